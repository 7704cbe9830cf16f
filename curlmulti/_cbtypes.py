"""The named tuples callbacks receive and return, as pycurl defines them.

``CurlSockAddr``  OPENSOCKETFUNCTION's address: family, socktype, protocol,
                  and addr as the ``socket`` module gives addresses
                  (``(host, port)`` for IPv4, ``(host, port, flowinfo,
                  scope_id)`` for IPv6, the path for AF_UNIX).
``KhKey``         SSH_KEYFUNCTION's known and found keys: key (bytes) and
                  keytype (a ``KHTYPE_*`` int).
``HstsEntry``     an HSTS cache entry: host (bytes; HSTSREADFUNCTION also
                  takes an ASCII str), expire (an aware UTC ``datetime``,
                  or None for an entry that does not expire) and
                  include_subdomains (bool).
``HstsIndex``     HSTSWRITEFUNCTION's position in the cache: idx, total.
"""

import collections

CurlSockAddr = collections.namedtuple("CurlSockAddr", "family socktype protocol addr")
KhKey = collections.namedtuple("KhKey", "key keytype")
HstsEntry = collections.namedtuple("HstsEntry", "host expire include_subdomains")
# idx, not index: a field named index would hide tuple.index().
HstsIndex = collections.namedtuple("HstsIndex", "idx total")
