#!/bin/sh
# Installs every Debian package the project needs. Idempotent: when everything is present it
# only runs dpkg-query and exits.
set -eu
PKGS="
gcc make meson ninja-build pkg-config git python3 ca-certificates
clang libclang-rt-14-dev
libjansson-dev libcyaml-dev libyaml-dev libssl-dev libcmocka-dev
libuv1-dev libcurl4-openssl-dev libmicrohttpd-dev libsqlite3-dev libwslay-dev
libseccomp-dev libcap-dev
bubblewrap busybox-static mmdebstrap debootstrap iproute2 openssl util-linux
curl wrk nginx-light
"
missing=""
for p in $PKGS; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
if [ -z "$missing" ]; then
        echo "deps: all $(echo $PKGS | wc -w) packages present"
        exit 0
fi
echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
        echo "deps: must run as root (apt-get install)" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
