#!/bin/bash
# A member of the throwaway domain (ad-dc.sh) joined with SSSD: run under
# `nsenter --net` into the domain controller's network namespace and
# `unshare --pid --fork --kill-child --mount --uts` by tests/common/ad.rs. The
# machine account member1$ and its keytab were made on the DC. SSSD runs here in
# the foreground with its own /etc/sssd, /var/lib/sss and nsswitch.conf (passwd
# and group: files sss); "ready" appears in DIR once alice resolves.
#   ad-member.sh DIR DC_DIR
set -euo pipefail
dir=$1
dc=$2
hostname member1
printf '127.0.0.1 localhost\n127.0.0.1 dc1.guise.test dc1\n127.0.0.2 member1.guise.test member1\n' > "$dir/hosts"
printf 'passwd: files sss\ngroup: files sss\nshadow: files\nhosts: files\n' > "$dir/nsswitch.conf"
mount --bind "$dir/hosts" /etc/hosts
mount --bind "$dir/nsswitch.conf" /etc/nsswitch.conf
mount -t tmpfs guise-sss /var/lib/sss
mkdir -p /var/lib/sss/db /var/lib/sss/pipes/private /var/lib/sss/mc /var/lib/sss/pubconf /var/lib/sss/gpo_cache
mkdir -p /etc/sssd
mount -t tmpfs guise-sssd /etc/sssd
# A /run of its own: sssd's pid file (/run/sssd.pid) is the member's, and no
# winbind is here (the member's directory is SSSD's alone).
mount -t tmpfs guise-run /run
cat > /etc/sssd/sssd.conf <<CONF
[sssd]
services = nss
domains = guise.test

[domain/guise.test]
id_provider = ad
access_provider = permit
ad_domain = guise.test
ad_server = dc1.guise.test
ad_hostname = member1.guise.test
krb5_realm = GUISE.TEST
ldap_id_mapping = false
krb5_keytab = $dc/member1.keytab
ldap_sasl_authid = member1\$@GUISE.TEST
use_fully_qualified_names = false
dyndns_update = false
ad_gpo_access_control = disabled
cache_credentials = false
CONF
chmod 0600 /etc/sssd/sssd.conf
export KRB5_CONFIG=$dc/krb5.conf
sssd -i --logger=stderr > "$dir/sssd.log" 2>&1 &
sssd=$!
for _ in $(seq 450); do
    if getent passwd alice >/dev/null 2>&1; then
        touch "$dir/ready"
        break
    fi
    kill -0 "$sssd" 2>/dev/null || { echo "sssd exited" >&2; exit 1; }
    sleep 0.2
done
wait "$sssd"
