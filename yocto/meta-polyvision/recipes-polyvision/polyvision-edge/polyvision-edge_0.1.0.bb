SUMMARY = "Polyvision Edge rig daemon: capture, stitch, detect, track, store, sync"
DESCRIPTION = "The daemon of the Polyvision Edge sports-analytics rig (polyvision-edge), its \
detector model, default configuration, systemd service and first-boot setup."
HOMEPAGE = "https://polyvision.invalid/edge"
SECTION = "multimedia"
# The workspace is Apache-2.0 (root Cargo.toml). The crates of polyvision-edge-crates.inc are
# linked in under their own licences (mostly MIT or Apache-2.0); see yocto/README.md.
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

# gstreamer-sys and gstreamer-app-sys find the libraries through pkg-config; the TensorRT shim
# (feature tensorrt, below) compiles against TensorRT's and CUDA's headers and links them.
DEPENDS += "\
    cuda-cudart \
    glib-2.0 \
    gstreamer1.0 \
    gstreamer1.0-plugins-base \
    tensorrt-core \
"

PV .= "+git"

# The workspace source. POLYVISION_SRC_URI and POLYVISION_SRCREV must name the repository and
# the commit to build (local.conf or the distro); for a build from a checkout use externalsrc
# instead (yocto/README.md). Cargo.lock in that commit must match polyvision-edge-crates.inc.
POLYVISION_SRC_URI ??= "git://git.polyvision.invalid/polyvision-edge.git;protocol=https;branch=main"
SRC_URI = " \
    ${POLYVISION_SRC_URI} \
    file://polyvision-edge.service \
    file://polyvision-firstboot.service \
    file://polyvision-firstboot.sh \
    file://edge.toml \
"
# No floating revision: an image is built from a known commit.
POLYVISION_SRCREV ??= "INVALID"
SRCREV = "${POLYVISION_SRCREV}"

S = "${WORKDIR}/git"

# Every crate of Cargo.lock, fetched by do_fetch; cargo then builds with --frozen, offline.
require ${BPN}-crates.inc

inherit cargo pkgconfig systemd useradd

COMPATIBLE_MACHINE = "(tegra)"

# Cargo features of the edge crate. CUDA is loaded at run time (cudarc with dynamic-loading:
# libcuda and libnvrtc are needed on the rig, nothing of CUDA at build time). The detector runs
# through TensorRT with the "tensorrt" feature: cuda/build.rs compiles the C++ shim against the
# TensorRT and CUDA headers of the sysroot and links nvinfer, nvonnxparser and cudart.
POLYVISION_CARGO_FEATURES ??= "tensorrt"
export TENSORRT_ROOT = "${STAGING_DIR_TARGET}${prefix}"
export CUDA_HOME = "${STAGING_DIR_TARGET}${prefix}/local/cuda-12.6"
POLYVISION_CARGO_ARGS = "--package polyvision-edge --bin polyvision-edge \
    ${@'--features "%s"' % d.getVar('POLYVISION_CARGO_FEATURES') if d.getVar('POLYVISION_CARGO_FEATURES') else ''}"

do_compile() {
    oe_cargo_build ${POLYVISION_CARGO_ARGS}
}

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/polyvision-edge ${D}${bindir}/polyvision-edge

    install -d ${D}${libexecdir}/polyvision
    install -m 0755 ${WORKDIR}/polyvision-firstboot.sh ${D}${libexecdir}/polyvision/polyvision-firstboot

    install -d ${D}${sysconfdir}/polyvision
    install -m 0644 ${WORKDIR}/edge.toml ${D}${sysconfdir}/polyvision/edge.toml

    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${WORKDIR}/polyvision-edge.service ${D}${systemd_system_unitdir}/
    install -m 0644 ${WORKDIR}/polyvision-firstboot.service ${D}${systemd_system_unitdir}/

    install -d ${D}${datadir}/polyvision/models
    install -m 0644 ${S}/models/polyvision-det.onnx ${D}${datadir}/polyvision/models/
    install -m 0644 ${S}/models/polyvision-det.card.json ${D}${datadir}/polyvision/models/

    install -d ${D}${docdir}/${BPN}
    install -m 0644 ${S}/README.md ${D}${docdir}/${BPN}/README.md
}

# The daemon runs as its own user; video for the GPU and camera device nodes.
USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system polyvision"
USERADD_PARAM:${PN} = "--system --gid polyvision --groups video --home-dir ${localstatedir}/lib/polyvision \
    --no-create-home --shell /sbin/nologin polyvision"

SYSTEMD_PACKAGES = "${PN}"
SYSTEMD_SERVICE:${PN} = "polyvision-edge.service polyvision-firstboot.service"
SYSTEMD_AUTO_ENABLE:${PN} = "enable"

PACKAGES =+ "${PN}-model"
FILES:${PN}-model += "${datadir}/polyvision/models"
FILES:${PN} += "${libexecdir}/polyvision"

# Edited on the rig (cloud endpoint, cameras, MQTT): a package update keeps local changes.
CONFFILES:${PN} = "${sysconfdir}/polyvision/edge.toml"

RDEPENDS:${PN} = " \
    ${PN}-model \
    cuda-cudart \
    cuda-nvrtc \
    gstreamer1.0-plugins-base-app \
    gstreamer1.0-plugins-base-playback \
    gstreamer1.0-plugins-base-videoconvertscale \
    gstreamer1.0-plugins-base-videotestsrc \
    gstreamer1.0-plugins-good-rtsp \
    gstreamer1.0-plugins-good-video4linux2 \
    gstreamer1.0-plugins-nvarguscamerasrc \
    gstreamer1.0-plugins-nvvidconv \
    gstreamer1.0-plugins-nvvideo4linux2 \
    tegra-argus-daemon \
    tegra-libraries-camera \
    tegra-libraries-cuda \
    tensorrt-core \
    tensorrt-plugins \
"
# NVIDIA's trtexec, to inspect or benchmark the cached engine on a rig.
RRECOMMENDS:${PN} = "tensorrt-trtexec"
