SUMMARY = "Polyvision Edge A/B update bundle (.swu) for swupdate"
DESCRIPTION = "Packs polyvision-image's root filesystem, the bootloader capsule and \
tegra-demo-distro's slot-switch script into a .swu that swupdate installs into the inactive \
root filesystem slot."
HOMEPAGE = "https://polyvision.invalid/edge"
SECTION = "images"

# tegra-demo-distro's Tegra swupdate integration (meta-tegrademo, dynamic layer meta-swupdate):
# SWUPDATE_IMAGES, the UEFI capsule, the lua script that switches the boot slot. It lives in
# another layer, so oelint cannot open it.
# nooelint: oelint.file.requirenotfound
require dynamic-layers/meta-swupdate/recipes-demo/images/swupdate-image-tegra-common.inc

# The same values as the .inc, stated here so the recipe reads on its own.
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COREBASE}/meta/COPYING.MIT;md5=3da9cfbcb788c80a0384361b4de20420"
SRC_URI = "file://sw-description"

SWUPDATE_CORE_IMAGE_NAME = "polyvision-image"
