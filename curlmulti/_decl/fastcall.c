/* -- Fast calls (CPython only) -------------------------------------------------
 * A call through cffi releases the GIL and takes it back, converts each
 * argument and saves errno: on CPython that is most of what a short libcurl
 * call costs.  The hot calls of a transfer's life that do not wait for the
 * network are therefore also built as builtin functions that keep the GIL:
 * the same C functions (shims.c, multigate.c) entered with a different way
 * of taking a handle's mutex.  cm_fastcall_init puts them in a dict at
 * import; _easy.py and _multi.py use them in place of the cffi functions of
 * the same name, with the same arguments and results, except that a struct
 * is given by its address (the record's gate_addr / g_addr: the record owns
 * the memory and keeps it until it is freed itself, and the caller holds the
 * record during the call).
 *
 * Holding the GIL, they must never wait for an easy handle's mutex with it:
 * the thread holding that mutex may be running Python (own_lock is held
 * across Python code) and so be waiting for the GIL.  cm_fc_mu_wait tries
 * the mutex, and only if it is taken waits for it with the GIL released, as
 * cffi would have.  A multi's mu is held only for a few instructions by a
 * thread that neither holds nor waits for the GIL, so taking it is not a
 * wait of that kind.  libcurl calls made here (setopt of a string or long,
 * getinfo of a long, curl_multi_add_handle, curl_multi_remove_handle,
 * curl_multi_info_read) do not wait for the network; the callbacks they may
 * run take the GIL they already have. */

#ifndef PYPY_VERSION

static void cm_fc_mu_wait(pthread_mutex_t *mu)
{
    PyThreadState *ts;
    if (pthread_mutex_trylock(mu) == 0)
        return;
    ts = PyEval_SaveThread();
    pthread_mutex_lock(mu);
    PyEval_RestoreThread(ts);
}

/* The module is built for the stable ABI of Python 3.9, which has no
 * METH_FASTCALL: the arguments come as a tuple, of n_addr addresses (ints),
 * then n_long other ints, then n_more that the caller reads itself; 0 once
 * the first two kinds are in a[] and v[]. */
static int cm_fc_unpack(PyObject *args, const char *name, int n_addr, void **a, int n_long, long *v,
                        int n_more)
{
    Py_ssize_t i, n = PyTuple_Size(args);
    if (n < 0)
        return -1;
    if (n != n_addr + n_long + n_more) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d arguments (%zd given)", name,
                     n_addr + n_long + n_more, n);
        return -1;
    }
    for (i = 0; i < n_addr; i++) {
        a[i] = PyLong_AsVoidPtr(PyTuple_GetItem(args, i));
        if (a[i] == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "%s(): address 0", name);
            return -1;
        }
    }
    for (i = 0; i < n_long; i++) {
        v[i] = PyLong_AsLong(PyTuple_GetItem(args, n_addr + i));
        if (v[i] == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* setopt_str(e, option, value: bytes) -> as cm_easy_fast_setopt_str */
static PyObject *cm_fc_setopt_str(PyObject *self, PyObject *args)
{
    void *a[1];
    long v[1];
    PyObject *value;
    const char *s;
    (void)self;
    if (cm_fc_unpack(args, "setopt_str", 1, a, 1, v, 1) < 0)
        return NULL;
    value = PyTuple_GetItem(args, 2);
    if (!PyBytes_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "setopt_str() takes bytes");
        return NULL;
    }
    if ((s = PyBytes_AsString(value)) == NULL)
        return NULL;
    return PyLong_FromLong(cm_easy_fast_setopt_str_l((struct cm_easy *)a[0], (CURLoption)v[0], s,
                                                     cm_fc_mu_wait));
}

/* setopt_long(e, option, value) -> as cm_easy_fast_setopt_long */
static PyObject *cm_fc_setopt_long(PyObject *self, PyObject *args)
{
    void *a[1];
    long v[2];
    (void)self;
    if (cm_fc_unpack(args, "setopt_long", 1, a, 2, v, 0) < 0)
        return NULL;
    return PyLong_FromLong(cm_easy_fast_setopt_long_l((struct cm_easy *)a[0], (CURLoption)v[0], v[1],
                                                      cm_fc_mu_wait));
}

/* getinfo_long(e, info) -> as cm_easy_fast_getinfo_long (LONG_MIN: see
 * cm_getinfo_code, set in this thread) */
static PyObject *cm_fc_getinfo_long(PyObject *self, PyObject *args)
{
    void *a[1];
    long v[1];
    (void)self;
    if (cm_fc_unpack(args, "getinfo_long", 1, a, 1, v, 0) < 0)
        return NULL;
    return PyLong_FromLong(cm_easy_fast_getinfo_long_l((struct cm_easy *)a[0], (CURLINFO)v[0],
                                                       cm_fc_mu_wait));
}

/* easy_lock(e), easy_unlock(e): cm_easy_lock, cm_easy_unlock */
static PyObject *cm_fc_easy_lock(PyObject *self, PyObject *addr)
{
    struct cm_easy *e = (struct cm_easy *)PyLong_AsVoidPtr(addr);
    (void)self;
    if (e == NULL)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "easy_lock(): address 0"), NULL);
    cm_fc_mu_wait(&e->mu);
    Py_RETURN_NONE;
}

static PyObject *cm_fc_easy_unlock(PyObject *self, PyObject *addr)
{
    struct cm_easy *e = (struct cm_easy *)PyLong_AsVoidPtr(addr);
    (void)self;
    if (e == NULL)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "easy_unlock(): address 0"), NULL);
    pthread_mutex_unlock(&e->mu);
    Py_RETURN_NONE;
}

/* add_begin(g, e), add_abandon(g, e), add_finish(g, e), remove(g, e): as
 * cm_multi_add_begin, _abandon, _finish, cm_multi_remove */
static PyObject *cm_fc_add_begin(PyObject *self, PyObject *args)
{
    void *a[2];
    (void)self;
    if (cm_fc_unpack(args, "add_begin", 2, a, 0, NULL, 0) < 0)
        return NULL;
    return PyLong_FromLong(cm_multi_add_begin_l((struct cm_multi *)a[0], (struct cm_easy *)a[1],
                                                cm_fc_mu_wait));
}

static PyObject *cm_fc_add_abandon(PyObject *self, PyObject *args)
{
    void *a[2];
    (void)self;
    if (cm_fc_unpack(args, "add_abandon", 2, a, 0, NULL, 0) < 0)
        return NULL;
    return PyLong_FromLong(cm_multi_add_abandon((struct cm_multi *)a[0], (struct cm_easy *)a[1]));
}

static PyObject *cm_fc_add_finish(PyObject *self, PyObject *args)
{
    void *a[2];
    (void)self;
    if (cm_fc_unpack(args, "add_finish", 2, a, 0, NULL, 0) < 0)
        return NULL;
    return PyLong_FromLong(cm_multi_add_finish_l((struct cm_multi *)a[0], (struct cm_easy *)a[1],
                                                 cm_fc_mu_wait));
}

static PyObject *cm_fc_remove(PyObject *self, PyObject *args)
{
    void *a[2];
    (void)self;
    if (cm_fc_unpack(args, "remove", 2, a, 0, NULL, 0) < 0)
        return NULL;
    return PyLong_FromLong(cm_multi_remove_l((struct cm_multi *)a[0], (struct cm_easy *)a[1],
                                             cm_fc_mu_wait));
}

/* multi_unlock(g): cm_multi_unlock */
static PyObject *cm_fc_multi_unlock(PyObject *self, PyObject *addr)
{
    struct cm_multi *g = (struct cm_multi *)PyLong_AsVoidPtr(addr);
    (void)self;
    if (g == NULL)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "multi_unlock(): address 0"), NULL);
    return PyLong_FromLong(cm_multi_unlock(g));
}

/* info(g, owners, codes, cap, queued): cm_multi_info (owners: void *[cap],
 * codes: int[cap], queued: int *) */
static PyObject *cm_fc_info(PyObject *self, PyObject *args)
{
    void *a[3];
    long v[1];
    int *queued;
    (void)self;
    if (cm_fc_unpack(args, "info", 3, a, 1, v, 1) < 0)
        return NULL;
    queued = (int *)PyLong_AsVoidPtr(PyTuple_GetItem(args, 4));
    if (queued == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "info(): address 0");
        return NULL;
    }
    if (v[0] < 0 || v[0] > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "info(): capacity out of range");
        return NULL;
    }
    return PyLong_FromLong(cm_multi_info((struct cm_multi *)a[0], (void **)a[1], (int *)a[2],
                                         (int)v[0], queued));
}

static PyMethodDef cm_fc_methods[] = {
    {"setopt_str", cm_fc_setopt_str, METH_VARARGS, NULL},
    {"setopt_long", cm_fc_setopt_long, METH_VARARGS, NULL},
    {"getinfo_long", cm_fc_getinfo_long, METH_VARARGS, NULL},
    {"easy_lock", cm_fc_easy_lock, METH_O, NULL},
    {"easy_unlock", cm_fc_easy_unlock, METH_O, NULL},
    {"add_begin", cm_fc_add_begin, METH_VARARGS, NULL},
    {"add_abandon", cm_fc_add_abandon, METH_VARARGS, NULL},
    {"add_finish", cm_fc_add_finish, METH_VARARGS, NULL},
    {"remove", cm_fc_remove, METH_VARARGS, NULL},
    {"multi_unlock", cm_fc_multi_unlock, METH_O, NULL},
    {"info", cm_fc_info, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}
};

/* Once, at import: the functions above into the dict at address d (under
 * the GIL; cffi calls this with it released).  0, or -1 with the dict
 * possibly half filled (the caller then uses none of them). */
static int cm_fastcall_init(void *d)
{
    PyMethodDef *def;
    int rc = 0;
    PyGILState_STATE st = PyGILState_Ensure();
    for (def = cm_fc_methods; def->ml_name != NULL && rc == 0; def++) {
        PyObject *f = PyCFunction_NewEx(def, NULL, NULL);
        if (f == NULL || PyDict_SetItemString((PyObject *)d, def->ml_name, f) < 0)
            rc = -1;
        Py_XDECREF(f);
    }
    if (rc)
        PyErr_Clear();
    PyGILState_Release(st);
    return rc;
}

#else /* PYPY_VERSION */

static int cm_fastcall_init(void *d)
{
    (void)d;
    return -1;
}

#endif
