SUMMARY = "Polyvision Edge rig image for Jetson Orin NX"
DESCRIPTION = "A headless systemd image with the polyvision-edge daemon, its model and service, \
the NVIDIA camera, CUDA and TensorRT runtime, and the persistent data partition for A/B updates."
HOMEPAGE = "https://polyvision.invalid/edge"
SECTION = "images"
LICENSE = "MIT"

inherit core-image

COMPATIBLE_MACHINE = "(tegra)"

# SSH for the factory and service (key login). No package manager: updates are A/B images.
# Time: systemd-timesyncd (part of systemd) reaches time-sync.target.
IMAGE_FEATURES += "ssh-server-openssh"

IMAGE_INSTALL = " \
    packagegroup-core-boot \
    ${CORE_IMAGE_EXTRA_INSTALL} \
    polyvision-edge \
    polyvision-persist \
    tensorrt-trtexec \
    tegra-nvpmodel \
    tegra-tools-jetson-clocks \
    ca-certificates \
    kernel-modules \
"

# With meta-swupdate in the build: the update agent, and the root filesystem as a tarball
# for polyvision-image-swupdate (the .swu bundle).
IMAGE_INSTALL:append = " ${@bb.utils.contains('BBFILE_COLLECTIONS', 'swupdate', 'swupdate', '', d)}"
IMAGE_FSTYPES:append = " ${@bb.utils.contains('BBFILE_COLLECTIONS', 'swupdate', 'tar.gz', '', d)}"

# The buffer and the engines live on the data partition; the root filesystem holds software.
IMAGE_ROOTFS_EXTRA_SPACE = "524288"
