SUMMARY = "Persistent rig state across A/B root filesystem updates"
DESCRIPTION = "Mounts the data partition at /data and bind-mounts /data/polyvision/state on \
/var/lib/polyvision and /data/polyvision/etc on /etc/polyvision, seeding the latter from the \
image's default configuration once."
HOMEPAGE = "https://polyvision.invalid/edge"
SECTION = "base"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = " \
    file://data.mount \
    file://polyvision-persist-seed.service \
    file://var-lib-polyvision.mount \
    file://etc-polyvision.mount \
"

S = "${WORKDIR}"

inherit systemd allarch

do_install() {
    install -d ${D}${systemd_system_unitdir} ${D}/data
    for unit in data.mount polyvision-persist-seed.service var-lib-polyvision.mount etc-polyvision.mount; do
        install -m 0644 ${WORKDIR}/$unit ${D}${systemd_system_unitdir}/
    done
}

FILES:${PN} += "/data"

SYSTEMD_SERVICE:${PN} = "data.mount polyvision-persist-seed.service var-lib-polyvision.mount etc-polyvision.mount"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

RDEPENDS:${PN} = "polyvision-edge"
