"""pycurl's ``pycurl.async_multi`` module: ``from pycurl.async_multi import
AsyncCurlMulti`` runs unchanged with curlmulti.  The class itself lives in
curlmulti._async."""

from ._async import AsyncCurlMulti

__all__ = ["AsyncCurlMulti"]
