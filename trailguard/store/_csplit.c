/*
 * One event's attributes split between hot columns and the rest, in C.
 *
 * `trailguard.store.arrow_rows.events_to_table` does this for every event; in Python the
 * copy of the attributes and the removal of the hot ones cost about as much as writing
 * the rest as JSON. The rule is the Python loop's, exactly: an attribute with a hot
 * column goes to that column when its value has the column's type (a str for text; a
 * float, or an int within 2**53, for numbers), and to the rest otherwise.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define EXACT_IN_DOUBLE (1LL << 53)

static int fits(PyObject *value, int wants_number)
{
    if (!wants_number) {
        return PyUnicode_CheckExact(value);
    }
    if (PyFloat_CheckExact(value)) {
        return 1;
    }
    if (!PyLong_CheckExact(value)) {
        return 0; /* bool is a subclass of int, and goes to the rest as in Python */
    }
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return overflow == 0 && number >= -EXACT_IN_DOUBLE && number <= EXACT_IN_DOUBLE;
}

/* split_hot(attributes, slots, row) -> the attributes without those placed in columns.
 * `slots` maps a hot attribute to (its column's list of values, whether it holds numbers);
 * a placed value is written at index `row` of that list. */
static PyObject *split_hot(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyDict_CheckExact(args[0]) || !PyDict_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "split_hot(attributes: dict, slots: dict, row: int)");
        return NULL;
    }
    PyObject *attributes = args[0], *slots = args[1];
    Py_ssize_t row = PyLong_AsSsize_t(args[2]);
    if (row == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *rest = PyDict_New();
    if (rest == NULL) {
        return NULL;
    }
    Py_ssize_t position = 0;
    PyObject *name, *value;
    while (PyDict_Next(attributes, &position, &name, &value)) {
        PyObject *slot = PyDict_GetItemWithError(slots, name);
        if (slot == NULL && PyErr_Occurred()) {
            goto failed;
        }
        if (slot != NULL) {
            if (!PyTuple_CheckExact(slot) || PyTuple_GET_SIZE(slot) != 2
                    || !PyList_CheckExact(PyTuple_GET_ITEM(slot, 0))) {
                PyErr_SetString(PyExc_TypeError, "a slot is (list of values, holds numbers)");
                goto failed;
            }
            PyObject *column = PyTuple_GET_ITEM(slot, 0);
            int wants_number = PyObject_IsTrue(PyTuple_GET_ITEM(slot, 1));
            if (wants_number < 0) {
                goto failed;
            }
            if (fits(value, wants_number)) {
                if (row < 0 || row >= PyList_GET_SIZE(column)) {
                    PyErr_SetString(PyExc_IndexError, "row is outside the column's list");
                    goto failed;
                }
                Py_INCREF(value);
                if (PyList_SetItem(column, row, value) < 0) { /* steals the reference */
                    goto failed;
                }
                continue;
            }
        }
        if (PyDict_SetItem(rest, name, value) < 0) {
            goto failed;
        }
    }
    return rest;

failed:
    Py_DECREF(rest);
    return NULL;
}

static PyMethodDef methods[] = {
    {"split_hot", (PyCFunction)(void (*)(void))split_hot, METH_FASTCALL,
     "Place hot attributes in their columns' lists; return the rest."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_csplit",
    "One event's attributes split between hot columns and the rest, in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__csplit(void)
{
    return PyModule_Create(&module);
}
