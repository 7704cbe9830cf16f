"""Side-by-side scenarios of the module-level API: the error class,
strerror functions, version information, global_init (see driver.py)."""


def scenario_error_class(pycurl, o, servers):
    o["is-exception"] = issubclass(pycurl.error, Exception)
    o.call("str", lambda: str(pycurl.error(7, "message")))
    o.call("args", lambda: pycurl.error(7, "message").args)


def scenario_strerror(pycurl, o, servers):
    for name, code in (("easy_strerror", 7), ("multi_strerror", 1), ("share_strerror", 1), ("url_strerror", 3)):
        func = getattr(pycurl, name, None)
        if func is None:
            o[name] = "absent"
            continue
        o.call(name, func, code)
        o.call(name + "(str)", func, "x")


def scenario_version(pycurl, o, servers):
    info = pycurl.version_info()
    o["version_info-length"] = len(info)
    o["version_info-types"] = [type(v).__name__ for v in info]
    o["version_info-libcurl"] = info[1]
    o["version-libcurl"] = pycurl.version.split()[1]
    o["COMPILE_SSL_LIB"] = getattr(pycurl, "COMPILE_SSL_LIB", "absent")


def scenario_global_init(pycurl, o, servers):
    o.call("GLOBAL_DEFAULT", pycurl.global_init, pycurl.GLOBAL_DEFAULT)
    o.call("bad-flag", pycurl.global_init, 1 << 20)
    o.call("str", pycurl.global_init, "x")
