/* -- The body and header trampolines in C (CPython only) ----------------------
 * On CPython the body (and the header lines) of a transfer whose
 * WRITEFUNCTION (HEADERFUNCTION) is a Python callable go through these C
 * functions instead of the extern "Python" cm_write_cb (cm_header_cb): the
 * chunk becomes a bytes object and the callable is called with the C API,
 * with no cffi conversions and no Python frame of ours.  They read the
 * record's slots on every call (write_cb or header_cb, write_view or
 * header_view, callback_error), so whatever Python set there is what runs;
 * anything but the common case (a result of None or the chunk's length) is
 * handed to Python functions of _callbacks.py, which keep the one definition
 * of the rules:
 *   full(record, address, n, header): the whole of cm_write_cb (or
 *       cm_header_cb), for a record whose transfer has a stored error or
 *       whose callback wants a memoryview;
 *   outcome(record, result, exception, n): what to tell libcurl of a
 *       result that is not the common one, or of an exception, which it
 *       stores in the record.
 * A pending signal (Ctrl-C) is run here first, as at the start of a Python
 * callback, and its exception stored the same way.
 *
 * e->pyrec is the record: the record owns e, and libcurl calls these only
 * while a transfer runs, which the record outlives; each call holds a
 * reference to it while Python runs.  The two functions and the slot names
 * are set once at import (cm_cwrite_init), a reference kept to each.  On PyPy
 * (whose ids are not addresses) none of this is compiled: cm_easy_set_cwrite
 * returns CURLE_NOT_BUILT_IN and the extern "Python" trampolines are used
 * (_callbacks.C_WRITE says which; it is also False on a CPython without the
 * GIL, as these rely on it). */

#ifndef PYPY_VERSION

static PyObject *cm_cw_full;
static PyObject *cm_cw_outcome;
static PyObject *cm_cw_names[5];  /* write_cb, write_view, header_cb, header_view, callback_error */
static const char *const cm_cw_strs[5] = {
    "write_cb", "write_view", "header_cb", "header_view", "callback_error"};

/* Once, at import: the two functions (a reference kept for good) and the
 * slot names, under the GIL (cffi calls this with it released).  -1 on
 * failure: _callbacks then keeps the extern "Python" trampolines. */
static int cm_cwrite_init(void *full, void *outcome)
{
    int i, rc = 0;
    PyGILState_STATE st = PyGILState_Ensure();
    for (i = 0; i < 5 && rc == 0; i++) {
        if (cm_cw_names[i] == NULL && (cm_cw_names[i] = PyUnicode_InternFromString(cm_cw_strs[i])) == NULL)
            rc = -1;
    }
    if (rc == 0) {
        Py_INCREF((PyObject *)full);
        Py_INCREF((PyObject *)outcome);
        Py_XDECREF(cm_cw_full);
        Py_XDECREF(cm_cw_outcome);
        cm_cw_full = (PyObject *)full;
        cm_cw_outcome = (PyObject *)outcome;
    } else {
        PyErr_Clear();
    }
    PyGILState_Release(st);
    return rc;
}

/* size_t of a Python int returned by full/outcome (which return one in
 * 0..SIZE_MAX); SIZE_MAX on any failure. */
static size_t cm_cw_size(PyObject *res)
{
    size_t v;
    if (res == NULL)
        return (size_t)-1;
    v = PyLong_AsSize_t(res);
    Py_DECREF(res);
    if (v == (size_t)-1 && PyErr_Occurred())
        PyErr_Clear();
    return v;
}

/* Hand the exception in flight to outcome(), which stores it on the record.
 * If that call itself fails before it stored anything (a signal's
 * KeyboardInterrupt at its entry, a RecursionError), the new exception is
 * handed over in its place, the first one being its __context__; after a
 * few failures the exception is written to callback_error directly, and
 * only if even that fails is it reported as unraisable. */
static size_t cm_cw_raised(PyObject *rec, size_t n)
{
    int tries;
    PyObject *t, *v, *tb, *nobj, *res;
    for (tries = 0;; tries++) {
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (v == NULL) {
            Py_XDECREF(t);
            Py_XDECREF(tb);
            return (size_t)-1;
        }
        if (tb != NULL)
            PyException_SetTraceback(v, tb);
        if (tries == 4)
            break;
        nobj = PyLong_FromSize_t(n);
        res = nobj ? PyObject_CallFunctionObjArgs(cm_cw_outcome, rec, Py_None, v, nobj, NULL) : NULL;
        Py_XDECREF(nobj);
        if (res != NULL) {
            Py_XDECREF(t);
            Py_DECREF(v);
            Py_XDECREF(tb);
            cm_cw_size(res);
            return (size_t)-1;
        }
        /* The new exception (set now) keeps the first one as its context. */
        Py_XDECREF(t);
        Py_XDECREF(tb);
        {
            PyObject *t2, *v2, *tb2;
            PyErr_Fetch(&t2, &v2, &tb2);
            PyErr_NormalizeException(&t2, &v2, &tb2);
            if (v2 != NULL && v2 != v)
                PyException_SetContext(v2, v);  /* steals v */
            else
                Py_DECREF(v);
            PyErr_Restore(t2, v2, tb2);
        }
    }
    Py_XDECREF(t);
    Py_XDECREF(tb);
    if (PyObject_SetAttr(rec, cm_cw_names[4], v) < 0) {
        PyObject *cls = PyExceptionInstance_Class(v);
        PyErr_Clear();
        Py_INCREF(cls);
        PyErr_Restore(cls, v, NULL);  /* steals both */
        PyErr_WriteUnraisable(rec);
        return (size_t)-1;
    }
    Py_DECREF(v);
    return (size_t)-1;
}

/* header: 0 for the body (write_cb), 1 for a header line (header_cb). */
static size_t cm_c_deliver(char *ptr, size_t n, struct cm_easy *e, int header)
{
    PyObject *rec = (PyObject *)e->pyrec;
    PyObject *flag, *cb, *data, *res, *nobj;
    size_t ret;
    int full;
    PyGILState_STATE st = PyGILState_Ensure();
    Py_INCREF(rec);  /* whatever the callable does, the record stays until we return */
    if (PyErr_CheckSignals() < 0)
        goto raised;
    /* A stored error (the transfer is being stopped) or a memoryview: the
     * whole of the Python trampoline. */
    flag = PyObject_GetAttr(rec, cm_cw_names[4]);
    if (flag == NULL)
        goto raised;
    Py_DECREF(flag);  /* only compared below: the record still holds it */
    full = flag != Py_None;
    if (!full) {
        flag = PyObject_GetAttr(rec, cm_cw_names[2 * header + 1]);
        if (flag == NULL)
            goto raised;
        full = PyObject_IsTrue(flag);
        Py_DECREF(flag);
        if (full < 0)
            goto raised;
    }
    if (full) {
        PyObject *addr = PyLong_FromVoidPtr(ptr);
        nobj = PyLong_FromSize_t(n);
        res = addr && nobj ? PyObject_CallFunctionObjArgs(cm_cw_full, rec, addr, nobj,
                                                          header ? Py_True : Py_False, NULL)
                           : NULL;
        Py_XDECREF(addr);
        Py_XDECREF(nobj);
        if (res == NULL)
            goto raised;
        ret = cm_cw_size(res);
        goto done;
    }
    cb = PyObject_GetAttr(rec, cm_cw_names[2 * header]);
    if (cb == NULL)
        goto raised;
    data = PyBytes_FromStringAndSize(ptr, (Py_ssize_t)n);
    if (data == NULL) {
        Py_DECREF(cb);
        goto raised;
    }
    res = PyObject_CallFunctionObjArgs(cb, data, NULL);
    Py_DECREF(data);
    Py_DECREF(cb);
    if (res == NULL)
        goto raised;
    if (res == Py_None) {
        Py_DECREF(res);
        ret = n;
        goto done;
    }
    if (PyLong_CheckExact(res)) {
        size_t v = PyLong_AsSize_t(res);
        if (v == n) {
            Py_DECREF(res);
            ret = n;
            goto done;
        }
        PyErr_Clear();  /* negative or too large: outcome() says what it means */
    }
    nobj = PyLong_FromSize_t(n);
    if (nobj == NULL) {
        Py_DECREF(res);
        goto raised;
    }
    flag = PyObject_CallFunctionObjArgs(cm_cw_outcome, rec, res, Py_None, nobj, NULL);
    Py_DECREF(res);
    Py_DECREF(nobj);
    if (flag == NULL)
        goto raised;
    ret = cm_cw_size(flag);
    goto done;
raised:
    ret = cm_cw_raised(rec, n);
done:
    Py_DECREF(rec);
    PyGILState_Release(st);
    return ret;
}

static size_t cm_c_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    return cm_c_deliver(ptr, size * nmemb, (struct cm_easy *)userdata, 0);
}

static size_t cm_c_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    return cm_c_deliver(ptr, size * nmemb, (struct cm_easy *)userdata, 1);
}

/* opt: CURLOPT_WRITEFUNCTION or CURLOPT_HEADERFUNCTION. */
static CURLcode cm_easy_set_cwrite(CURL *h, CURLoption opt, struct cm_easy *e, void *rec)
{
    CURLcode rc;
    e->pyrec = rec;
    if (opt == CURLOPT_WRITEFUNCTION) {
        rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cm_c_write);
        return rc ? rc : curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)e);
    }
    if (opt == CURLOPT_HEADERFUNCTION) {
        rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, cm_c_header);
        return rc ? rc : curl_easy_setopt(h, CURLOPT_HEADERDATA, (void *)e);
    }
    return CURLE_BAD_FUNCTION_ARGUMENT;
}

#else /* PYPY_VERSION */

static int cm_cwrite_init(void *full, void *outcome)
{
    (void)full;
    (void)outcome;
    return -1;
}

static CURLcode cm_easy_set_cwrite(CURL *h, CURLoption opt, struct cm_easy *e, void *rec)
{
    (void)h;
    (void)opt;
    (void)e;
    (void)rec;
    return CURLE_NOT_BUILT_IN;
}

#endif
