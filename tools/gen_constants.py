#!/usr/bin/env python3
"""Regenerate ``curlmulti/_constnames.py``: the pycurl name of every libcurl
constant curlmulti exposes, paired with the C symbol that holds its value.

The table holds *names only*.  Values are always supplied by the C compiler
when ``build_ffi.py`` compiles the extension, and a symbol the installed
libcurl lacks is dropped at build time, so ``hasattr(curlmulti, NAME)`` tells
the truth for the libcurl the package was built against.

Inputs:
  --headers DIR   a libcurl include directory (``.../curl``); every
                  CURLOPT_/CURLINFO_/CURLE_/CURLM_/CURLMOPT_ symbol found in
                  it is included.
  --names FILE    optional: a list of pycurl-style names (one per line),
                  e.g. ``python -c "import pycurl; print(*dir(pycurl), sep='\\n')"``;
                  each is mapped to its C symbol with the rules below, so names
                  from libcurl versions newer than the headers are kept too.

Usage: python tools/gen_constants.py --headers /usr/include/x86_64-linux-gnu/curl \
           --names tools/pycurl-names.txt > curlmulti/_constnames.py

tools/pycurl-names.txt lists the integer constants of pycurl 7.49.0.
"""
import argparse
import os
import re
import sys

# pycurl prefix -> libcurl prefix, most specific first.  A pycurl name that
# matches none of these is looked up as CURLOPT_X, CURLINFO_X, CURL_X, CURLX.
PREFIX_RULES = [
    ("E_MULTI_", "CURLM_"),
    ("E_CALL_MULTI_PERFORM", "CURLM_CALL_MULTI_PERFORM"),
    ("E_", "CURLE_"),
    ("M_", "CURLMOPT_"),
    ("SH_", "CURLSHOPT_"),
    ("LOCK_DATA_", "CURL_LOCK_DATA_"),
    ("POLL_", "CURL_POLL_"),
    ("CSELECT_", "CURL_CSELECT_"),
    ("PAUSE_", "CURLPAUSE_"),
    ("SOCKET_", "CURL_SOCKET_"),
    ("INFOTYPE_", "CURLINFO_"),
    ("INFO_", "CURLINFO_"),
    ("HTTPAUTH_", "CURLAUTH_"),
    ("PROXYTYPE_", "CURLPROXY_"),
    ("SSLVERSION_", "CURL_SSLVERSION_"),
    ("VERSION_", "CURL_VERSION_"),
    ("PROTO_", "CURLPROTO_"),
    ("GLOBAL_", "CURL_GLOBAL_"),
    ("READFUNC_", "CURL_READFUNC_"),
    ("WRITEFUNC_", "CURL_WRITEFUNC_"),
    ("SEEKFUNC_", "CURL_SEEKFUNC_"),
    ("TRAILERFUNC_", "CURL_TRAILERFUNC_"),
    ("PREREQFUNC_", "CURL_PREREQFUNC_"),
    ("FNMATCHFUNC_", "CURL_FNMATCHFUNC_"),
    ("CHUNK_BGN_FUNC_", "CURL_CHUNK_BGN_FUNC_"),
    ("CHUNK_END_FUNC_", "CURL_CHUNK_END_FUNC_"),
    ("SOCKOPT_", "CURL_SOCKOPT_"),
    ("SOCKTYPE_", "CURLSOCKTYPE_"),
    ("IOE_", "CURLIOE_"),
    ("IOCMD_", "CURLIOCMD_"),
    ("TIMECONDITION_", "CURL_TIMECOND_"),
    ("NETRC_", "CURL_NETRC_"),
    ("IPRESOLVE_", "CURL_IPRESOLVE_"),
    ("USESSL_", "CURLUSESSL_"),
    ("FTPSSL_", "CURLFTPSSL_"),
    ("FTPAUTH_", "CURLFTPAUTH_"),
    ("FTPMETHOD_", "CURLFTPMETHOD_"),
    ("FTP_CREATE_DIR", "CURLFTP_CREATE_DIR"),
    ("KHTYPE_", "CURLKHTYPE_"),
    ("KHSTAT_", "CURLKHSTAT_"),
    ("KHMATCH_", "CURLKHMATCH_"),
    ("SSH_AUTH_", "CURLSSH_AUTH_"),
    ("GSSAPI_DELEGATION_", "CURLGSSAPI_DELEGATION_"),
    ("HEADER_", "CURLHEADER_"),
    ("SSLOPT_", "CURLSSLOPT_"),
    ("PIPE_", "CURLPIPE_"),
    ("REDIR_", "CURL_REDIR_"),
    ("RTSPREQ_", "CURL_RTSPREQ_"),
    ("TLSAUTH_", "CURL_TLSAUTH_"),
    ("CURL_HTTP_VERSION_", "CURL_HTTP_VERSION_"),
    ("HTTP_VERSION_", "CURL_HTTP_VERSION_"),
    ("UPART_", "CURLUPART_"),
    ("U_", "CURLU_"),
    ("WS_", "CURLWS_"),
    ("CURLSTS_", "CURLSTS_"),
    ("MAIL_", "CURLMAIL_"),
    ("FORM_", "CURLFORM_"),
    ("STS_", "CURLSTS_"),
    ("HSTS_", "CURLHSTS_"),
    ("CURLHSTS_", "CURLHSTS_"),
    ("CURL_VERSION_", "CURL_VERSION_"),
    ("COMPILE_LIBCURL_VERSION_NUM", "LIBCURL_VERSION_NUM"),
]
# pycurl names of symbols newer than the headers at hand, whose family the
# name alone does not tell.
NEWER = {
    "CONN_ID": "CURLINFO_CONN_ID",
    "XFER_ID": "CURLINFO_XFER_ID",
    "EARLYDATA_SENT_T": "CURLINFO_EARLYDATA_SENT_T",
    "POSTTRANSFER_TIME_T": "CURLINFO_POSTTRANSFER_TIME_T",
    "QUEUE_TIME_T": "CURLINFO_QUEUE_TIME_T",
    "SIZE_DELIVERED": "CURLINFO_SIZE_DELIVERED",
    "USED_PROXY": "CURLINFO_USED_PROXY",
    "ECH": "CURLOPT_ECH",
    "HAPROXY_CLIENT_IP": "CURLOPT_HAPROXY_CLIENT_IP",
    "SSL_SIGNATURE_ALGORITHMS": "CURLOPT_SSL_SIGNATURE_ALGORITHMS",
}
# pycurl names whose C symbol the rules above would get wrong.
ALIASES = {
    "FORM_CONTENTS": "CURLFORM_COPYCONTENTS",
    # libcurl 8.17's notifications are not CURLMOPT_ values.
    "M_NOTIFY_EASY_DONE": "CURLMNOTIFY_EASY_DONE",
    "M_NOTIFY_INFO_READ": "CURLMNOTIFY_INFO_READ",
}
FALLBACK_PREFIXES = ["CURLOPT_", "CURLINFO_", "CURL_", "CURL"]

# libcurl families included whole from the headers, and their pycurl prefix.
HEADER_FAMILIES = [
    ("CURLOPT_", ""),
    ("CURLINFO_", ""),
    ("CURLE_", "E_"),
    ("CURLM_", "E_MULTI_"),
    ("CURLMOPT_", "M_"),
    ("CURL_POLL_", "POLL_"),
    ("CURL_CSELECT_", "CSELECT_"),
    ("CURLPAUSE_", "PAUSE_"),
]
# Symbols of those families that are not option/info/code values.
NOT_VALUES = {
    "CURLOPT_LASTENTRY", "CURLINFO_LASTONE", "CURLINFO_NONE", "CURLINFO_END",
    "CURLINFO_STRING", "CURLINFO_LONG", "CURLINFO_DOUBLE", "CURLINFO_SLIST",
    "CURLINFO_PTR", "CURLINFO_SOCKET", "CURLINFO_OFF_T", "CURLINFO_MASK",
    "CURLINFO_TYPEMASK", "CURLE_LAST", "CURLM_LAST", "CURLMOPT_LASTENTRY",
    "CURLE_OBSOLETE", "CURLOPT_OBSOLETE", "CURLOPT_", "CURLOPT_SOMETHING",
    "CURLOPT_PRIVATE", "CURLINFO_PRIVATE",  # curlmulti's own: maps CURL * to Curl
}
# CURLINFO_ values that are debug-callback info types, not getinfo keys.
INFOTYPES = {"TEXT", "HEADER_IN", "HEADER_OUT", "DATA_IN", "DATA_OUT",
             "SSL_DATA_IN", "SSL_DATA_OUT"}

TOKEN = re.compile(r"\b(CURL[A-Z0-9_]*)\b")


def header_symbols(directory):
    found = set()
    for name in sorted(os.listdir(directory)):
        if name.endswith(".h"):
            with open(os.path.join(directory, name)) as f:
                found.update(TOKEN.findall(f.read()))
    return found


def candidates(pyname):
    for py, c in PREFIX_RULES:
        if pyname.startswith(py):
            yield c + pyname[len(py):]
    for c in FALLBACK_PREFIXES:
        yield c + pyname


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headers", required=True)
    ap.add_argument("--names")
    args = ap.parse_args()
    symbols = header_symbols(args.headers)
    table = {}
    unmapped = []
    if args.names:
        with open(args.names) as f:
            for line in f:
                pyname = line.strip()
                # [a-z]: SSLVERSION_TLSv1_2 and its kin are mixed case in C too.
                if not re.fullmatch(r"[A-Z][A-Za-z0-9_]*", pyname) or pyname == "COMPILE_PY_VERSION_HEX":
                    continue
                if pyname in ALIASES:
                    table[pyname] = ALIASES[pyname]
                    continue
                cands = list(candidates(pyname))
                hit = next((c for c in cands if c in symbols), None)
                if hit is None:
                    hit = NEWER.get(pyname)
                if hit is None and any(pyname.startswith(p) for p, _ in PREFIX_RULES):
                    hit = cands[0]  # newer than these headers: the build probe decides
                if hit is None:
                    unmapped.append(pyname)
                else:
                    table[pyname] = hit
    have = set(table.values())
    for cname in sorted(symbols):
        if (cname in NOT_VALUES or cname in have or cname.startswith("CURLOPTTYPE")
                or "OBSOLETE" in cname):
            continue
        for cprefix, pyprefix in HEADER_FAMILIES:
            if cname.startswith(cprefix):
                rest = cname[len(cprefix):]
                if cprefix == "CURLINFO_" and rest in INFOTYPES:
                    pyname = "INFOTYPE_" + rest
                else:
                    pyname = pyprefix + rest
                table.setdefault(pyname, cname)
                break
    out = sys.stdout
    out.write('"""Generated by tools/gen_constants.py: do not edit.\n\n'
              "pycurl name -> libcurl C symbol.  Names only: the values come from the C\n"
              "compiler when build_ffi.py builds curlmulti._curl, and symbols the installed\n"
              'libcurl lacks are dropped there.\n"""\n\n'
              "CONSTANTS = (\n")
    for pyname in sorted(table):
        out.write("    (%r, %r),\n" % (pyname, table[pyname]))
    out.write(")\n")
    if unmapped:
        sys.stderr.write("unmapped pycurl names: %s\n" % " ".join(unmapped))


if __name__ == "__main__":
    main()
