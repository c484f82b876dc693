#!/usr/bin/env bash
# Debian packages the tests need: nginx (the data-path test's TLS proxy), openssl (the test
# control plane's and the kind tier's certificates), shellcheck (lints the scripts), and for the
# kind tier: debootstrap (root filesystems of its images), iptables (the container engine's
# networking), libseccomp-dev and pkg-config (runc's seccomp support), gcc (the pause binary),
# curl (the suite's HTTPS client).
set -euo pipefail
packages=(nginx openssl shellcheck debootstrap iptables libseccomp-dev pkg-config gcc libc6-dev curl)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "installing Debian packages: ${missing[*]}" >&2
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system nginx on port 80; the tests run their own on free ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  "${sudo[@]}" systemctl stop nginx || true
fi
