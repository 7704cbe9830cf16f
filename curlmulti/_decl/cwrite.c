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
 * e->pyrec is the record (borrowed: the record owns e, and libcurl calls this
 * only while a transfer runs, which the record outlives).  The two functions
 * are borrowed from _callbacks' module globals, set once at import.  On PyPy
 * (whose ids are not addresses) none of this is compiled: cm_easy_set_cwrite
 * returns CURLE_NOT_BUILT_IN and the extern "Python" trampoline is used. */

#ifndef PYPY_VERSION

static PyObject *cm_cw_full;
static PyObject *cm_cw_outcome;
static PyObject *cm_cw_names[5];  /* write_cb, write_view, header_cb, header_view, callback_error */
static const char *const cm_cw_strs[5] = {
    "write_cb", "write_view", "header_cb", "header_view", "callback_error"};

static int cm_cwrite_init(void *full, void *outcome)
{
    cm_cw_full = (PyObject *)full;
    cm_cw_outcome = (PyObject *)outcome;
    return 0;
}

/* size_t of a Python int returned by full/outcome; SIZE_MAX on any failure. */
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

/* Hand the exception in flight to outcome(), which stores it.  A second one
 * raised meanwhile (a signal at its entry) is handed over in turn; only if
 * that keeps happening is the last one reported as unraisable. */
static size_t cm_cw_raised(PyObject *rec, size_t n)
{
    int tries;
    for (tries = 0; tries < 4; tries++) {
        PyObject *t, *v, *tb, *nobj, *res;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_NormalizeException(&t, &v, &tb);
        if (v == NULL) {
            Py_XDECREF(t);
            Py_XDECREF(tb);
            return (size_t)-1;
        }
        if (tb != NULL)
            PyException_SetTraceback(v, tb);
        nobj = PyLong_FromSize_t(n);
        res = nobj ? PyObject_CallFunctionObjArgs(cm_cw_outcome, rec, Py_None, v, nobj, NULL) : NULL;
        Py_XDECREF(nobj);
        Py_XDECREF(t);
        Py_DECREF(v);
        Py_XDECREF(tb);
        if (res != NULL) {
            cm_cw_size(res);
            return (size_t)-1;
        }
    }
    PyErr_WriteUnraisable(rec);
    return (size_t)-1;
}

/* header: 0 for the body (write_cb), 1 for a header line (header_cb). */
static size_t cm_c_deliver(char *ptr, size_t n, struct cm_easy *e, int header)
{
    PyObject *rec = (PyObject *)e->pyrec;
    PyObject *flag, *cb, *data, *res, *nobj;
    size_t ret;
    int i;
    PyGILState_STATE st = PyGILState_Ensure();
    if (cm_cw_names[4] == NULL) {
        for (i = 0; i < 5; i++) {
            cm_cw_names[i] = PyUnicode_InternFromString(cm_cw_strs[i]);
            if (cm_cw_names[i] == NULL) {
                while (i-- > 0)
                    Py_CLEAR(cm_cw_names[i]);
                goto raised;
            }
        }
    }
    if (PyErr_CheckSignals() < 0)
        goto raised;
    /* A stored error (the transfer is being stopped) or a memoryview: the
     * whole of the Python trampoline. */
    flag = PyObject_GetAttr(rec, cm_cw_names[4]);
    if (flag == NULL)
        goto raised;
    Py_DECREF(flag);  /* only compared below: the record still holds it */
    if (flag == Py_None) {
        flag = PyObject_GetAttr(rec, cm_cw_names[2 * header + 1]);
        if (flag == NULL)
            goto raised;
        Py_DECREF(flag);
    }
    if (flag != Py_None && flag != Py_False) {
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
