#!/bin/bash
# A throwaway Samba Active Directory domain controller, GUISE.TEST, for the tests:
# run under `unshare --mount --net --uts --propagation private --fork` by
# tests/common/ad.rs, so that its ports, its /run/samba (winbindd's socket), the
# hostname, /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf it needs are this
# namespace's own. NSS here has winbind: the domain's accounts are Unix accounts
# to every program run in the namespace (nsenter). Exits when samba does.
#   ad-dc.sh DIR   (DIR: an empty directory of the test's; "ready" appears in it)
set -euo pipefail
dir=$1
ip link set lo up
hostname dc1
mount -t tmpfs guise-ad /run/samba 2>/dev/null || { mkdir -p /run/samba && mount -t tmpfs guise-ad /run/samba; }
printf '127.0.0.1 localhost\n127.0.0.1 dc1.guise.test dc1\n' > "$dir/hosts"
printf 'nameserver 127.0.0.1\nsearch guise.test\n' > "$dir/resolv.conf"
printf 'passwd: files winbind\ngroup: files winbind\nshadow: files\nhosts: files dns\n' > "$dir/nsswitch.conf"
mount --bind "$dir/hosts" /etc/hosts
mount --bind "$dir/resolv.conf" /etc/resolv.conf
mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
# Samba's default smb.conf and krb5.conf are not this domain's.
mkdir -p "$dir/etc"
: > "$dir/etc/empty.conf"
mount --bind "$dir/etc/empty.conf" /etc/samba/smb.conf
samba-tool domain provision --realm=GUISE.TEST --domain=GUISE --server-role=dc \
    --dns-backend=SAMBA_INTERNAL --use-rfc2307 --adminpass='Guise-Admin-1' \
    --targetdir="$dir/dc" --host-ip=127.0.0.1 \
    --option="interfaces=lo" --option="bind interfaces only=yes" \
    --option="winbind use default domain = yes" --option="template shell = /bin/sh" \
    --option="dns forwarder = 127.0.0.1" > "$dir/provision.log" 2>&1
conf=$dir/dc/etc/smb.conf
mount --bind "$conf" /etc/samba/smb.conf
# The domain's KDC, named outright (no DNS lookups), for kinit and guise.
cat > "$dir/krb5.conf" <<KRB5
[libdefaults]
    default_realm = GUISE.TEST
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
[realms]
    GUISE.TEST = {
        kdc = 127.0.0.1
        admin_server = 127.0.0.1
    }
[domain_realm]
    .guise.test = GUISE.TEST
    guise.test = GUISE.TEST
KRB5
tool() { samba-tool "$@" -s "$conf" >> "$dir/provision.log" 2>&1; }
# Domain Users is every user's primary group; its gidNumber is their Unix gid.
tool group addunixattrs "Domain Users" 10000
# finance (gid 10010) holds accounting (gid 10011): alice, in accounting, is in
# finance by nesting. auditors has no gidNumber (bob); carol is in neither.
tool group add finance --nis-domain=guise --gid-number=10010
tool group add accounting --nis-domain=guise --gid-number=10011
tool group add auditors
tool group addmembers finance accounting
n=0
for user in alice bob carol; do
    n=$((n + 1))
    tool user create "$user" 'Guise-User-1' --nis-domain=guise --unix-home="/home/$user" \
        --uid-number=$((10000 + n)) --gid-number=10000 --login-shell=/bin/sh
done
tool group addmembers accounting alice
tool group addmembers auditors bob
# guise's service: an account with the principal guise/dc1.guise.test, whose
# keytab guise rpc serve --keytab reads (samba-tool domain exportkeytab).
tool user create guisesvc 'Guise-Service-1'
tool spn add guise/dc1.guise.test guisesvc
samba-tool domain exportkeytab "$dir/guise.keytab" --principal=guise/dc1.guise.test -s "$conf" \
    >> "$dir/provision.log" 2>&1
samba -i -M single -s "$conf" > "$dir/samba.log" 2>&1 &
samba=$!
for _ in $(seq 200); do
    if wbinfo -p >/dev/null 2>&1 && getent passwd alice >/dev/null 2>&1; then
        touch "$dir/ready"
        break
    fi
    kill -0 "$samba" 2>/dev/null || { echo "samba exited" >&2; exit 1; }
    sleep 0.2
done
wait "$samba"
