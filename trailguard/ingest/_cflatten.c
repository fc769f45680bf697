/*
 * The common case of `trailguard.ingest.flatten.flatten`, in C.
 *
 * Flattening is the biggest single cost of decoding a record in Python (about a fifth of
 * a decode worker's time on CloudTrail and GuardDuty JSON). This walk handles documents
 * made only of the values most documents hold: objects, arrays, ASCII keys and strings,
 * 64-bit integers, floats, booleans and nulls. Anything else (a non-ASCII key or string,
 * a wider integer, a name or attribute count past its limit, nesting past the depth
 * limit, another type) makes it return None, and the Python walk, which checks and
 * reports all of those, flattens the whole document instead. So the result is always
 * exactly the Python walk's (tests/ingest/test_flatten_native.py checks that).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>

typedef struct {
    PyObject *flat;      /* the result being built */
    PyObject *dumps;     /* orjson.dumps: an array's own JSON text */
    Py_ssize_t max_depth;
    Py_ssize_t max_attributes;
    Py_ssize_t max_name;
} Walk;

/* 1: handled; 0: not a plain document, fall back; -1: a Python error is set. */
static int walk(Walk *w, PyObject *value, PyObject *name, Py_ssize_t depth);

/* The value as a plain scalar is stored under `name`: 1 stored, 0 fall back. */
static int plain_scalar(PyObject *child)
{
    if (PyUnicode_CheckExact(child)) {
        return PyUnicode_IS_ASCII(child) ? 1 : 0;
    }
    if (PyBool_Check(child) || PyFloat_CheckExact(child)) {
        return 1;
    }
    if (PyLong_CheckExact(child)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(child, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        /* The Python walk keeps -2**63 and anything wider as digits. */
        return (overflow == 0 && number != LLONG_MIN) ? 1 : 0;
    }
    return 0;
}

static int add(Walk *w, PyObject *name, PyObject *value)
{
    Py_ssize_t length = PyUnicode_GET_LENGTH(name);
    if (length == 0) {
        return 1; /* a scalar under a top-level "" key has no name: left out, as in Python */
    }
    if (length > w->max_name || PyDict_GET_SIZE(w->flat) >= w->max_attributes) {
        return 0;
    }
    return PyDict_SetItem(w->flat, name, value) == 0 ? 1 : -1;
}

/* An array keeps its own JSON text under its name, as the Python walk does. */
static int add_array_text(Walk *w, PyObject *array, PyObject *name)
{
    if (PyUnicode_GET_LENGTH(name) == 0) {
        return 1;
    }
    PyObject *json = PyObject_CallOneArg(w->dumps, array);
    if (json == NULL) {
        PyErr_Clear(); /* the Python walk reports why it cannot be JSON */
        return 0;
    }
    PyObject *text = PyUnicode_FromEncodedObject(json, "utf-8", "strict");
    Py_DECREF(json);
    if (text == NULL) {
        PyErr_Clear();
        return 0;
    }
    int status = PyUnicode_IS_ASCII(text) ? add(w, name, text) : 0;
    Py_DECREF(text);
    return status;
}

static int walk_child(Walk *w, PyObject *child, PyObject *child_name, Py_ssize_t depth)
{
    if (PyDict_CheckExact(child) || PyList_CheckExact(child)) {
        return walk(w, child, child_name, depth + 1);
    }
    if (child == Py_None) {
        return 1; /* JSON nulls are left out */
    }
    if (!plain_scalar(child)) {
        return 0;
    }
    return add(w, child_name, child);
}

static PyObject *child_name_of(PyObject *prefix, PyObject *key)
{
    return PyUnicode_Concat(prefix, key);
}

static int walk(Walk *w, PyObject *value, PyObject *name, Py_ssize_t depth)
{
    if (depth >= w->max_depth) {
        return 0;
    }
    PyObject *prefix;
    if (PyUnicode_GET_LENGTH(name) > 0) {
        prefix = PyUnicode_FromFormat("%U.", name);
        if (prefix == NULL) {
            return -1;
        }
    } else {
        prefix = Py_NewRef(name);
    }

    int status = 1;
    if (PyDict_CheckExact(value)) {
        Py_ssize_t position = 0;
        PyObject *key, *child;
        while (status == 1 && PyDict_Next(value, &position, &key, &child)) {
            if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
                status = 0;
                break;
            }
            /* The borrowed child stays alive: `value` is not changed during the walk. */
            PyObject *child_name = child_name_of(prefix, key);
            if (child_name == NULL) {
                status = -1;
                break;
            }
            status = walk_child(w, child, child_name, depth);
            Py_DECREF(child_name);
        }
    } else {
        status = add_array_text(w, value, name);
        Py_ssize_t count = PyList_GET_SIZE(value);
        for (Py_ssize_t index = 0; status == 1 && index < count; index++) {
            PyObject *child = PyList_GET_ITEM(value, index);
            PyObject *child_name = PyUnicode_FromFormat("%U%zd", prefix, index);
            if (child_name == NULL) {
                status = -1;
                break;
            }
            Py_INCREF(child);
            status = walk_child(w, child, child_name, depth);
            Py_DECREF(child);
            Py_DECREF(child_name);
        }
    }
    Py_DECREF(prefix);
    return status;
}

static PyObject *flatten_plain(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "flatten_plain(document, dumps, max_depth, max_attributes, max_name)");
        return NULL;
    }
    PyObject *document = args[0];
    if (!PyDict_CheckExact(document)) {
        Py_RETURN_NONE;
    }
    Walk w;
    w.dumps = args[1];
    w.max_depth = PyLong_AsSsize_t(args[2]);
    w.max_attributes = PyLong_AsSsize_t(args[3]);
    w.max_name = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    w.flat = PyDict_New();
    if (w.flat == NULL) {
        return NULL;
    }
    PyObject *empty = PyUnicode_FromStringAndSize("", 0);
    if (empty == NULL) {
        Py_DECREF(w.flat);
        return NULL;
    }
    int status = walk(&w, document, empty, 0);
    Py_DECREF(empty);
    if (status == 1) {
        return w.flat;
    }
    Py_DECREF(w.flat);
    if (status < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Whether `text` holds `run` decimal digits in a row: a JSON text that may hold an integer
 * orjson would read only approximately (see payloads._may_hold_wide_integer). */
static PyObject *has_digit_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "has_digit_run(text: str, run: int)");
        return NULL;
    }
    Py_ssize_t run = PyLong_AsSsize_t(args[1]);
    if (run == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *text = args[0];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    Py_ssize_t digits = 0;
    if (kind == PyUnicode_1BYTE_KIND && run > 0) {
        /* Nearly every record: one byte per character. A run that starts at `start` ends
         * at `start + run - 1`; that byte is looked at first, backwards from there, and a
         * non-digit rules out every start up to it, so most probes skip `run` bytes
         * (3-4x faster than reading every byte on CloudTrail records). Bytes from
         * `start` to `known_end` are digits already seen, never read twice. */
        const unsigned char *bytes = (const unsigned char *)data;
        Py_ssize_t start = 0;
        Py_ssize_t known_end = -1;
        while (start + run <= length) {
            Py_ssize_t end = start + run - 1;
            Py_ssize_t low = known_end >= start ? known_end + 1 : start;
            Py_ssize_t probe = end;
            while (probe >= low && (unsigned char)(bytes[probe] - '0') <= 9) {
                probe--;
            }
            if (probe < low) {
                Py_RETURN_TRUE;
            }
            known_end = end;
            start = probe + 1;
        }
        Py_RETURN_FALSE;
    }
    for (Py_ssize_t index = 0; index < length; index++) {
        Py_UCS4 character = PyUnicode_READ(kind, data, index);
        digits = (character >= '0' && character <= '9') ? digits + 1 : 0;
        if (digits >= run && run > 0) {
            Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"flatten_plain", (PyCFunction)(void (*)(void))flatten_plain, METH_FASTCALL,
     "Flat attributes of a plain JSON document, or None when the Python walk must do it."},
    {"has_digit_run", (PyCFunction)(void (*)(void))has_digit_run, METH_FASTCALL,
     "Whether a str holds the given number of decimal digits in a row."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cflatten",
    "The common case of trailguard.ingest.flatten.flatten, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__cflatten(void)
{
    return PyModule_Create(&module);
}
