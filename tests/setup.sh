#!/bin/sh
# tests/setup.sh: install the Debian packages the build and the tests need
# (make setup, check, sanitize, demo).  Idempotent: silent when nothing is
# missing; otherwise one apt-get update and one install.  Works as root
# without a tty (CI=true, stdin closed); uses sudo -n otherwise.
# Services that packages would start (the system Dovecot) are kept from
# starting by a temporary policy-rc.d; the tests run their own Dovecot.
set -u

PKGS="build-essential pkg-config libcurl4-openssl-dev libssl-dev
libarchive-dev libinih-dev dovecot-imapd dovecot-pop3d python3 mandoc
strace openssl faketime clang libclang-rt-14-dev procps time
util-linux-extra"

missing=
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
	[ "$st" = "install ok installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "setup: installing$missing" >&2
if [ "$(id -u)" = 0 ]; then
	SUDO=
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo -n"
else
	echo "setup: not root and no sudo; install:$missing" >&2
	exit 1
fi

policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	# 101 = "action forbidden": postinst scripts do not start services
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null &&
		$SUDO chmod 0755 "$policy" && own_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
rc=0
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq </dev/null \
	>/dev/null || rc=$?
if [ $rc -eq 0 ]; then
	# shellcheck disable=SC2086
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
		--no-install-recommends \
		-o Dpkg::Options::=--force-confdef \
		-o Dpkg::Options::=--force-confold $missing </dev/null \
		>/tmp/mailsync-setup.log 2>&1 || rc=$?
fi
[ $own_policy = 1 ] && $SUDO rm -f "$policy"
if [ $rc -ne 0 ]; then
	echo "setup: apt-get failed ($rc); see /tmp/mailsync-setup.log" >&2
	tail -20 /tmp/mailsync-setup.log >&2 2>/dev/null
	exit 1
fi
exit 0
