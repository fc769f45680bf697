/*
 * Rows of the events table, written in C: the hot attributes picked out into their
 * columns, every other attribute written straight into the JSON text of `attrs`.
 *
 * Two ways in:
 *   flat_row(attributes)       an event's flat attributes (what events_to_table gets);
 *   document_row(document,...) a parsed JSON document, flattened as it is walked, so no
 *                              dict of flat attributes and none of their names are ever
 *                              built as Python objects (about a fifth of a decode
 *                              worker's time went to building, splitting and writing them).
 *
 * Both return (attrs JSON as bytes, tuple of hot values with None where absent), or None
 * when the input holds anything they do not handle exactly as the Python code does; the
 * caller then takes the Python path, which checks and reports everything. The rules they
 * follow are the Python code's:
 *   - the hot split is arrow_rows._split_in_python: an attribute with a hot column goes
 *     there when its value has the column's type (a str for text; a float, or an int
 *     within 2**53, for numbers), and to `attrs` otherwise;
 *   - the walk is trailguard.ingest.flatten.flatten: dotted names, an array's own JSON
 *     text under its name and each element under its index, nulls left out, the depth,
 *     attribute-count and name-length limits.
 * document_row hands back every document whose flat names could collide (a key that is
 * empty or holds a dot), and any key that is not ASCII or a str, an integer past 64 bits,
 * a float that is not finite, a string that is not valid Unicode, any limit reached, and
 * any other type. tests/store/test_rows_native.py checks both against the Python code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define EXACT_IN_DOUBLE (1LL << 53)
#define MAX_HOT 64
#define MAX_WATCHED 16
#define MAX_WALK_DEPTH 1000

/* 1: done; 0: not handled here, the caller takes the Python path; -1: a Python error. */
enum { FALLBACK = 0, DONE = 1, FAILED = -1 };

/* ---- the hot columns (set once by configure) ---------------------------------------- */

typedef struct {
    char *name;
    Py_ssize_t length;
    int numeric;
} HotColumn;

static HotColumn hot_columns[MAX_HOT];
static Py_ssize_t hot_count = -1;
/* Slots chained by name length (names are looked up for every attribute written):
 * first_of_length[n] is the first slot whose name has n bytes, next_of_length[slot] the
 * next one; -1 ends a chain. Longer names than HOT_NAME_MAX have no slot. */
#define HOT_NAME_MAX 128
static Py_ssize_t first_of_length[HOT_NAME_MAX + 1];
static Py_ssize_t next_of_length[MAX_HOT];

static Py_ssize_t hot_slot(const char *name, Py_ssize_t length)
{
    if (length > HOT_NAME_MAX) {
        return -1;
    }
    for (Py_ssize_t slot = first_of_length[length]; slot >= 0; slot = next_of_length[slot]) {
        if (memcmp(hot_columns[slot].name, name, length) == 0) {
            return slot;
        }
    }
    return -1;
}

static int fits(PyObject *value, int numeric)
{
    if (!numeric) {
        return PyUnicode_CheckExact(value);
    }
    if (PyFloat_CheckExact(value)) {
        return 1;
    }
    if (!PyLong_CheckExact(value)) {
        return 0; /* bool is a subclass of int, and goes to attrs as in Python */
    }
    int overflow = 0;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return overflow == 0 && number >= -EXACT_IN_DOUBLE && number <= EXACT_IN_DOUBLE;
}

/* ---- a growing byte buffer ----------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t length;
    Py_ssize_t capacity;
} Buffer;

static int reserve(Buffer *buffer, Py_ssize_t more)
{
    if (buffer->length + more <= buffer->capacity) {
        return 0;
    }
    Py_ssize_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity < buffer->length + more) {
        capacity *= 2;
    }
    char *grown = PyMem_Realloc(buffer->data, capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

static int put(Buffer *buffer, const char *bytes, Py_ssize_t length)
{
    if (reserve(buffer, length) < 0) {
        return -1;
    }
    memcpy(buffer->data + buffer->length, bytes, length);
    buffer->length += length;
    return 0;
}

/* Whether any of the 8 bytes in `word` needs escaping in JSON: below 0x20, a quote or a
 * backslash. (x - 0x01..) & ~x & 0x80.. has a high bit set exactly when some byte of x
 * is zero, and the same with 0x20 when some byte is below 0x20; bytes of 0x80 and up
 * (UTF-8) never count. Most strings need no escape; scanning them 8 bytes at a time took
 * ~0.5 us off the ~15.8 us a decode worker spends per event (best of 7 runs over 100
 * of the benchmark's requests, each way twice). */
static inline int word_needs_escape(uint64_t word)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t highs = 0x8080808080808080ULL;
    uint64_t quotes = word ^ (ones * '"');
    uint64_t backslashes = word ^ (ones * '\\');
    uint64_t found = ((word - ones * 0x20) & ~word) | ((quotes - ones) & ~quotes)
                     | ((backslashes - ones) & ~backslashes);
    return (found & highs) != 0;
}

/* `bytes` as the inside of a JSON string: quote, backslash and control characters
 * escaped the way orjson escapes them; other bytes (UTF-8 included) as they are. */
static int put_escaped(Buffer *buffer, const char *bytes, Py_ssize_t length)
{
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t run = 0; /* start of the bytes not yet copied */
    Py_ssize_t index = 0;
    while (index < length) {
        if (index + 8 <= length) {
            uint64_t word;
            memcpy(&word, bytes + index, 8);
            if (!word_needs_escape(word)) {
                index += 8;
                continue;
            }
        }
        unsigned char byte = (unsigned char)bytes[index];
        if (byte >= 0x20 && byte != '"' && byte != '\\') {
            index++;
            continue;
        }
        char escape[6] = {'\\', 0, '0', '0', hex[byte >> 4], hex[byte & 0xF]};
        Py_ssize_t size = 2;
        switch (byte) {
        case '"': escape[1] = '"'; break;
        case '\\': escape[1] = '\\'; break;
        case '\b': escape[1] = 'b'; break;
        case '\f': escape[1] = 'f'; break;
        case '\n': escape[1] = 'n'; break;
        case '\r': escape[1] = 'r'; break;
        case '\t': escape[1] = 't'; break;
        default: escape[1] = 'u'; size = 6;
        }
        if (put(buffer, bytes + run, index - run) < 0 || put(buffer, escape, size) < 0) {
            return -1;
        }
        index++;
        run = index;
    }
    return put(buffer, bytes + run, length - run);
}

static int put_quoted(Buffer *buffer, const char *bytes, Py_ssize_t length)
{
    if (put(buffer, "\"", 1) < 0 || put_escaped(buffer, bytes, length) < 0) {
        return -1;
    }
    return put(buffer, "\"", 1);
}

/* A scalar as JSON: DONE, FALLBACK (a type or value not handled here) or FAILED. */
static int put_scalar(Buffer *buffer, PyObject *value)
{
    if (PyUnicode_CheckExact(value)) {
        Py_ssize_t length;
        const char *text = PyUnicode_AsUTF8AndSize(value, &length);
        if (text == NULL) {
            PyErr_Clear(); /* a lone surrogate: the Python code says so */
            return FALLBACK;
        }
        return put_quoted(buffer, text, length) < 0 ? FAILED : DONE;
    }
    if (PyBool_Check(value)) {
        return (value == Py_True ? put(buffer, "true", 4) : put(buffer, "false", 5)) < 0
                   ? FAILED : DONE;
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if ((number == -1 && PyErr_Occurred()) || overflow != 0 || number == LLONG_MIN) {
            PyErr_Clear(); /* the Python code keeps such integers as their digits */
            return FALLBACK;
        }
        char digits[24];
        int size = snprintf(digits, sizeof digits, "%lld", number);
        return put(buffer, digits, size) < 0 ? FAILED : DONE;
    }
    if (PyFloat_CheckExact(value)) {
        double number = PyFloat_AS_DOUBLE(value);
        if (!isfinite(number)) {
            return FALLBACK; /* JSON has no spelling for it */
        }
        /* Python's repr, with ".0" kept so a whole float stays a float in JSON. */
        char *text = PyOS_double_to_string(number, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (text == NULL) {
            return FAILED;
        }
        int status = put(buffer, text, (Py_ssize_t)strlen(text));
        PyMem_Free(text);
        return status < 0 ? FAILED : DONE;
    }
    return FALLBACK;
}

/* ---- one row being written ----------------------------------------------------------- */

typedef struct {
    Buffer attrs;      /* "{...": the JSON object of `attrs`, without its closing brace */
    int first;         /* nothing written into attrs yet */
    PyObject *hot;     /* tuple of hot values; NULL items until the end */
    Py_ssize_t count;  /* attributes the document produced */
    /* names written by the document or the tail, looked for by the tail and the extras */
    const char *watched[MAX_WATCHED];
    Py_ssize_t watched_length[MAX_WATCHED];
    int seen[MAX_WATCHED];
    Py_ssize_t watched_count;
} Row;

static int row_start(Row *row)
{
    memset(row, 0, sizeof *row);
    row->first = 1;
    row->hot = PyTuple_New(hot_count);
    if (row->hot == NULL) {
        return -1;
    }
    return put(&row->attrs, "{", 1);
}

static void row_discard(Row *row)
{
    Py_XDECREF(row->hot);
    PyMem_Free(row->attrs.data);
}

static void note_written(Row *row, const char *name, Py_ssize_t length)
{
    for (Py_ssize_t index = 0; index < row->watched_count; index++) {
        if (row->watched_length[index] == length
                && memcmp(row->watched[index], name, length) == 0) {
            row->seen[index] = 1;
        }
    }
}

/* The attribute `name` = `value`: into its hot column when it has one and the value fits,
 * into attrs otherwise. */
static int row_put(Row *row, const char *name, Py_ssize_t length, PyObject *value)
{
    note_written(row, name, length);
    Py_ssize_t slot = hot_slot(name, length);
    if (slot >= 0 && fits(value, hot_columns[slot].numeric)) {
        Py_ssize_t size;
        if (PyUnicode_CheckExact(value) && PyUnicode_AsUTF8AndSize(value, &size) == NULL) {
            PyErr_Clear(); /* a lone surrogate: no column can keep it; Python says so */
            return FALLBACK;
        }
        PyObject *old = PyTuple_GET_ITEM(row->hot, slot);
        Py_INCREF(value);
        PyTuple_SET_ITEM(row->hot, slot, value);
        Py_XDECREF(old);
        return DONE;
    }
    Py_ssize_t mark = row->attrs.length;
    if ((!row->first && put(&row->attrs, ",", 1) < 0) || put_quoted(&row->attrs, name, length) < 0
            || put(&row->attrs, ":", 1) < 0) {
        return FAILED;
    }
    int status = put_scalar(&row->attrs, value);
    if (status != DONE) {
        row->attrs.length = mark;
        return status;
    }
    row->first = 0;
    return DONE;
}

static PyObject *row_finish(Row *row)
{
    if (put(&row->attrs, "}", 1) < 0) {
        row_discard(row);
        return NULL;
    }
    for (Py_ssize_t slot = 0; slot < hot_count; slot++) {
        if (PyTuple_GET_ITEM(row->hot, slot) == NULL) {
            PyTuple_SET_ITEM(row->hot, slot, Py_NewRef(Py_None));
        }
    }
    PyObject *attrs = PyBytes_FromStringAndSize(row->attrs.data, row->attrs.length);
    PyObject *result = attrs ? PyTuple_Pack(2, attrs, row->hot) : NULL;
    Py_XDECREF(attrs);
    row_discard(row);
    return result;
}

/* Returns the row for DONE, None for FALLBACK, NULL for FAILED; frees the row. */
static PyObject *row_result(Row *row, int status)
{
    if (status == DONE) {
        return row_finish(row);
    }
    row_discard(row);
    if (status == FAILED) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ---- flat_row ------------------------------------------------------------------------ */

static PyObject *flat_row(PyObject *module, PyObject *attributes)
{
    if (hot_count < 0) {
        PyErr_SetString(PyExc_RuntimeError, "_crows.configure was not called");
        return NULL;
    }
    if (!PyDict_CheckExact(attributes)) {
        Py_RETURN_NONE;
    }
    Row row;
    if (row_start(&row) < 0) {
        row_discard(&row);
        return NULL;
    }
    int status = DONE;
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (status == DONE && PyDict_Next(attributes, &position, &key, &value)) {
        Py_ssize_t length;
        const char *name = PyUnicode_CheckExact(key) ? PyUnicode_AsUTF8AndSize(key, &length) : NULL;
        if (name == NULL) {
            PyErr_Clear();
            status = FALLBACK;
            break;
        }
        status = row_put(&row, name, length, value);
    }
    return row_result(&row, status);
}

/* ---- document_row --------------------------------------------------------------------- */

typedef struct {
    Row row;
    Buffer name;       /* the dotted name of the value being walked */
    PyObject *dumps;   /* orjson.dumps: an array's own JSON text */
    Py_ssize_t max_depth, max_attributes, max_name;
} Walk;

static int walk(Walk *w, PyObject *value, Py_ssize_t depth);

static int add(Walk *w, PyObject *value)
{
    if (w->name.length == 0) {
        return DONE; /* unreachable for a dict document; as in Python, a nameless value */
    }
    if (w->name.length > w->max_name || w->row.count >= w->max_attributes) {
        return FALLBACK; /* the Python walk refuses it and says which limit */
    }
    w->row.count++;
    return row_put(&w->row, w->name.data, w->name.length, value);
}

/* An array keeps its own JSON text under its name, as the Python walk does. */
static int add_array_text(Walk *w, PyObject *array)
{
    if (w->name.length == 0) {
        return DONE;
    }
    if (w->name.length > w->max_name || w->row.count >= w->max_attributes) {
        return FALLBACK;
    }
    PyObject *json = PyObject_CallOneArg(w->dumps, array);
    if (json == NULL || !PyBytes_CheckExact(json)) {
        Py_XDECREF(json);
        PyErr_Clear(); /* the Python walk reports why it cannot be JSON */
        return FALLBACK;
    }
    int status;
    if (hot_slot(w->name.data, w->name.length) < 0) {
        /* The common case: the text goes into attrs without becoming a str first. */
        Row *row = &w->row;
        note_written(row, w->name.data, w->name.length);
        w->row.count++;
        status = ((!row->first && put(&row->attrs, ",", 1) < 0)
                  || put_quoted(&row->attrs, w->name.data, w->name.length) < 0
                  || put(&row->attrs, ":", 1) < 0
                  || put_quoted(&row->attrs, PyBytes_AS_STRING(json), PyBytes_GET_SIZE(json)) < 0)
                     ? FAILED : DONE;
        row->first = 0;
    } else {
        PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(json), PyBytes_GET_SIZE(json),
                                              "strict");
        status = text ? add(w, text) : FAILED;
        Py_XDECREF(text);
    }
    Py_DECREF(json);
    return status;
}

static int walk_child(Walk *w, PyObject *child, Py_ssize_t depth)
{
    if (PyDict_CheckExact(child) || PyList_CheckExact(child)) {
        return walk(w, child, depth + 1);
    }
    if (child == Py_None) {
        return DONE; /* JSON nulls are left out */
    }
    return add(w, child);
}

static int walk(Walk *w, PyObject *value, Py_ssize_t depth)
{
    if (depth >= w->max_depth) {
        return FALLBACK;
    }
    Py_ssize_t base = w->name.length;
    int status = DONE;
    /* Held while it is walked: `dumps` runs Python code, which could drop it. */
    Py_INCREF(value);
    if (PyDict_CheckExact(value)) {
        Py_ssize_t position = 0;
        PyObject *key, *child;
        while (status == DONE && PyDict_Next(value, &position, &key, &child)) {
            if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
                status = FALLBACK; /* names count characters; the Python walk checks them */
                break;
            }
            Py_ssize_t length = PyUnicode_GET_LENGTH(key);
            const char *text = (const char *)PyUnicode_DATA(key);
            if (length == 0 || memchr(text, '.', length) != NULL) {
                status = FALLBACK; /* two paths could give one name */
                break;
            }
            w->name.length = base;
            if ((base > 0 && put(&w->name, ".", 1) < 0) || put(&w->name, text, length) < 0) {
                status = FAILED;
                break;
            }
            /* The borrowed child stays alive: the document is not changed during the walk. */
            status = walk_child(w, child, depth);
        }
    } else {
        status = add_array_text(w, value);
        /* The size is read at every step: `dumps` could have changed the list. */
        for (Py_ssize_t index = 0; status == DONE && index < PyList_GET_SIZE(value); index++) {
            char digits[24];
            int size = snprintf(digits, sizeof digits, "%zd", index);
            w->name.length = base;
            if ((base > 0 && put(&w->name, ".", 1) < 0) || put(&w->name, digits, size) < 0) {
                status = FAILED;
                break;
            }
            PyObject *child = PyList_GET_ITEM(value, index);
            Py_INCREF(child);
            status = walk_child(w, child, depth);
            Py_DECREF(child);
        }
    }
    w->name.length = base;
    Py_DECREF(value);
    return status;
}

/* Watch the names of (name, value) pairs; FALLBACK when one is not an ASCII str. */
static int watch(Row *row, PyObject *pairs)
{
    for (Py_ssize_t index = 0; index < PyTuple_GET_SIZE(pairs); index++) {
        PyObject *pair = PyTuple_GET_ITEM(pairs, index);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "tail and extras hold (name, value) tuples");
            return FAILED;
        }
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        if (!PyUnicode_CheckExact(name) || !PyUnicode_IS_ASCII(name)
                || row->watched_count == MAX_WATCHED) {
            return FALLBACK;
        }
        row->watched[row->watched_count] = (const char *)PyUnicode_DATA(name);
        row->watched_length[row->watched_count] = PyUnicode_GET_LENGTH(name);
        row->watched_count++;
    }
    return DONE;
}

/* Each (name, value) of `pairs` whose name nothing wrote yet; `first` is its first watch. */
static int put_unseen(Row *row, PyObject *pairs, Py_ssize_t first)
{
    for (Py_ssize_t index = 0; index < PyTuple_GET_SIZE(pairs); index++) {
        if (row->seen[first + index]) {
            continue;
        }
        PyObject *pair = PyTuple_GET_ITEM(pairs, index);
        int status = row_put(row, row->watched[first + index], row->watched_length[first + index],
                             PyTuple_GET_ITEM(pair, 1));
        if (status != DONE) {
            return status;
        }
    }
    return DONE;
}

/* document_row(document, dumps, max_depth, max_attributes, max_name, tail, extras)
 *
 * `tail`: (name, value) pairs the caller adds after the document's own attributes when
 * the document has none of that name (`message`, `actor`). `extras`: (name, value) pairs
 * under the document's attributes, as in {**extras, **attributes}; a name the document or
 * the tail also has keeps their value. */
static PyObject *document_row(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyTuple_CheckExact(args[5]) || !PyTuple_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "document_row(document, dumps, max_depth, "
                        "max_attributes, max_name, tail: tuple, extras: tuple)");
        return NULL;
    }
    if (hot_count < 0) {
        PyErr_SetString(PyExc_RuntimeError, "_crows.configure was not called");
        return NULL;
    }
    PyObject *document = args[0], *tail = args[5], *extras = args[6];
    if (!PyDict_CheckExact(document)) {
        Py_RETURN_NONE;
    }
    Walk w;
    memset(&w, 0, sizeof w);
    w.dumps = args[1];
    w.max_depth = PyLong_AsSsize_t(args[2]);
    w.max_attributes = PyLong_AsSsize_t(args[3]);
    w.max_name = PyLong_AsSsize_t(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (w.max_depth > MAX_WALK_DEPTH) {
        /* The walk recurses once per level; past this the C stack is at risk. */
        PyErr_Format(PyExc_ValueError, "max_depth is at most %d", MAX_WALK_DEPTH);
        return NULL;
    }
    if (row_start(&w.row) < 0) {
        row_discard(&w.row);
        return NULL;
    }
    int status = watch(&w.row, tail);
    if (status == DONE) {
        status = watch(&w.row, extras);
    }
    if (status == DONE) {
        status = walk(&w, document, 0);
    }
    if (status == DONE) {
        status = put_unseen(&w.row, tail, 0);
    }
    if (status == DONE) {
        status = put_unseen(&w.row, extras, PyTuple_GET_SIZE(tail));
    }
    PyMem_Free(w.name.data);
    return row_result(&w.row, status);
}

/* ---- pack_columns ------------------------------------------------------------------ */

/* One Arrow column being built: a validity bitmap (a bit per row, 1 = a value), for text
 * 32-bit offsets and the UTF-8 bytes, for numbers 8 bytes per row. */
typedef struct {
    Buffer validity;
    Buffer offsets;
    Buffer data;
    Py_ssize_t nulls;
    int text;
} Column;

static int column_start(Column *column, int text)
{
    memset(column, 0, sizeof *column);
    column->text = text;
    int32_t zero = 0;
    return text ? put(&column->offsets, (const char *)&zero, sizeof zero) : 0;
}

static void column_free(Column *column)
{
    PyMem_Free(column->validity.data);
    PyMem_Free(column->offsets.data);
    PyMem_Free(column->data.data);
}

static int column_mark(Column *column, Py_ssize_t row, int valid)
{
    if (row % 8 == 0) {
        char none = 0;
        if (put(&column->validity, &none, 1) < 0) {
            return -1;
        }
    }
    if (valid) {
        column->validity.data[row / 8] |= (char)(1 << (row % 8));
    } else {
        column->nulls++;
    }
    return 0;
}

static int column_end_offset(Column *column)
{
    if (column->data.length > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError,
                        "a chunk of rows holds more than 2 GiB of text in one column");
        return -1;
    }
    int32_t end = (int32_t)column->data.length;
    return put(&column->offsets, (const char *)&end, sizeof end);
}

/* Appends `value` (None, str or bytes for text; None, float or int for numbers). */
static int column_add(Column *column, Py_ssize_t row, PyObject *value)
{
    int valid = value != Py_None;
    if (column_mark(column, row, valid) < 0) {
        return -1;
    }
    if (column->text) {
        if (valid) {
            Py_ssize_t length;
            const char *bytes;
            if (PyBytes_CheckExact(value)) {
                bytes = PyBytes_AS_STRING(value);
                length = PyBytes_GET_SIZE(value);
            } else if (PyUnicode_CheckExact(value)) {
                bytes = PyUnicode_AsUTF8AndSize(value, &length);
                if (bytes == NULL) {
                    return -1;
                }
            } else {
                PyErr_Format(PyExc_TypeError, "a text column was given %.100s",
                             Py_TYPE(value)->tp_name);
                return -1;
            }
            if (put(&column->data, bytes, length) < 0) {
                return -1;
            }
        }
        return column_end_offset(column);
    }
    double number = 0.0; /* a null's slot holds 0 */
    if (valid && PyFloat_CheckExact(value)) {
        number = PyFloat_AS_DOUBLE(value);
    } else if (valid && PyLong_CheckExact(value)) {
        number = PyLong_AsDouble(value); /* exact: the row writer puts |n| <= 2**53 here */
        if (number == -1.0 && PyErr_Occurred()) {
            return -1;
        }
    } else if (valid) {
        PyErr_Format(PyExc_TypeError, "a number column was given %.100s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    return put(&column->data, (const char *)&number, sizeof number);
}

static int column_add_int64(Column *column, Py_ssize_t row, PyObject *value)
{
    long long number = PyLong_AsLongLong(value);
    if (number == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_SetString(PyExc_OverflowError,
                            "an event's timestamp is too large for a 64-bit integer");
        }
        return -1;
    }
    int64_t stored = (int64_t)number;
    if (column_mark(column, row, 1) < 0) {
        return -1;
    }
    return put(&column->data, (const char *)&stored, sizeof stored);
}

/* (null count, validity or None, offsets or None, data) */
static PyObject *column_result(Column *column)
{
    PyObject *validity = column->nulls
        ? PyBytes_FromStringAndSize(column->validity.data, column->validity.length)
        : Py_NewRef(Py_None);
    PyObject *offsets = column->text
        ? PyBytes_FromStringAndSize(column->offsets.data, column->offsets.length)
        : Py_NewRef(Py_None);
    PyObject *data = PyBytes_FromStringAndSize(column->data.data ? column->data.data : "",
                                               column->data.length);
    PyObject *result = (validity && offsets && data)
        ? Py_BuildValue("(nOOO)", column->nulls, validity, offsets, data) : NULL;
    Py_XDECREF(validity);
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    return result;
}

/* Columns of the events table in order: event_type, timestamp, dedup_key, the hot
 * columns, attrs. */
enum { EVENT_TYPE, TIMESTAMP, DEDUP_KEY, FIRST_HOT };

/* pack_columns(events) -> (rows, columns): `events` is a list of PackedEvent tuples
 * (event_type, timestamp, dedup_key, attrs, hot). */
static PyObject *pack_columns(PyObject *module, PyObject *events)
{
    if (hot_count < 0) {
        PyErr_SetString(PyExc_RuntimeError, "_crows.configure was not called");
        return NULL;
    }
    if (!PyList_CheckExact(events)) {
        PyErr_SetString(PyExc_TypeError, "pack_columns(events: list of PackedEvent)");
        return NULL;
    }
    Py_ssize_t count = FIRST_HOT + hot_count + 1;
    Column *columns = PyMem_Calloc(count, sizeof(Column));
    if (columns == NULL) {
        return PyErr_NoMemory();
    }
    int status = 0;
    for (Py_ssize_t index = 0; index < count && status == 0; index++) {
        int text = index != TIMESTAMP
                   && !(index >= FIRST_HOT && index < FIRST_HOT + hot_count
                        && hot_columns[index - FIRST_HOT].numeric);
        status = column_start(&columns[index], text);
    }
    Py_ssize_t rows = PyList_GET_SIZE(events);
    for (Py_ssize_t row = 0; row < rows && status == 0; row++) {
        PyObject *event = PyList_GET_ITEM(events, row);
        PyObject *hot = PyTuple_Check(event) && PyTuple_GET_SIZE(event) == 5
                        ? PyTuple_GET_ITEM(event, 4) : NULL;
        if (hot == NULL || !PyTuple_Check(hot) || PyTuple_GET_SIZE(hot) != hot_count) {
            PyErr_SetString(PyExc_TypeError, "pack_columns takes PackedEvent tuples "
                            "(event_type, timestamp, dedup_key, attrs, hot values)");
            status = -1;
            break;
        }
        status = column_add(&columns[EVENT_TYPE], row, PyTuple_GET_ITEM(event, 0));
        status = status ? status : column_add_int64(&columns[TIMESTAMP], row,
                                                    PyTuple_GET_ITEM(event, 1));
        status = status ? status : column_add(&columns[DEDUP_KEY], row, PyTuple_GET_ITEM(event, 2));
        for (Py_ssize_t slot = 0; slot < hot_count && status == 0; slot++) {
            status = column_add(&columns[FIRST_HOT + slot], row, PyTuple_GET_ITEM(hot, slot));
        }
        status = status ? status : column_add(&columns[count - 1], row, PyTuple_GET_ITEM(event, 3));
    }
    PyObject *result = NULL;
    if (status == 0) {
        PyObject *packed = PyTuple_New(count);
        for (Py_ssize_t index = 0; packed != NULL && index < count; index++) {
            PyObject *column = column_result(&columns[index]);
            if (column == NULL) {
                Py_CLEAR(packed);
                break;
            }
            PyTuple_SET_ITEM(packed, index, column);
        }
        result = packed ? Py_BuildValue("(nN)", rows, packed) : NULL;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        column_free(&columns[index]);
    }
    PyMem_Free(columns);
    return result;
}

/* ---- configure ----------------------------------------------------------------------- */

static void forget_hot_columns(void)
{
    for (Py_ssize_t slot = 0; slot < MAX_HOT; slot++) {
        PyMem_Free(hot_columns[slot].name);
        hot_columns[slot].name = NULL;
    }
    hot_count = -1;
}

/* configure(names, numeric): the hot attributes in column order, and which hold numbers. */
static PyObject *configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyTuple_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])
            || PyTuple_GET_SIZE(args[0]) != PyTuple_GET_SIZE(args[1])
            || PyTuple_GET_SIZE(args[0]) > MAX_HOT) {
        PyErr_SetString(PyExc_TypeError, "configure(names: tuple[str], numeric: tuple[bool]) "
                        "with at most 64 names");
        return NULL;
    }
    forget_hot_columns();
    Py_ssize_t count = PyTuple_GET_SIZE(args[0]);
    for (Py_ssize_t slot = 0; slot < count; slot++) {
        Py_ssize_t length;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(args[0], slot), &length);
        int numeric = PyObject_IsTrue(PyTuple_GET_ITEM(args[1], slot));
        char *copy = name ? PyMem_Malloc(length + 1) : NULL;
        if (copy == NULL || numeric < 0) {
            PyMem_Free(copy);
            forget_hot_columns();
            return PyErr_Occurred() ? NULL : PyErr_NoMemory();
        }
        memcpy(copy, name, length + 1);
        hot_columns[slot] = (HotColumn){copy, length, numeric};
    }
    for (Py_ssize_t length = 0; length <= HOT_NAME_MAX; length++) {
        first_of_length[length] = -1;
    }
    for (Py_ssize_t slot = count - 1; slot >= 0; slot--) {
        Py_ssize_t length = hot_columns[slot].length;
        next_of_length[slot] = length <= HOT_NAME_MAX ? first_of_length[length] : -1;
        if (length <= HOT_NAME_MAX) {
            first_of_length[length] = slot;
        } else {
            PyErr_SetString(PyExc_ValueError, "a hot attribute name is longer than 128 bytes");
            forget_hot_columns();
            return NULL;
        }
    }
    hot_count = count;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL,
     "Set the hot attributes (in column order) and which of them hold numbers."},
    {"flat_row", (PyCFunction)flat_row, METH_O,
     "(attrs JSON, hot values) of flat attributes, or None for the Python path."},
    {"pack_columns", (PyCFunction)pack_columns, METH_O,
     "(rows, Arrow column buffers) of a list of PackedEvent tuples."},
    {"document_row", (PyCFunction)(void (*)(void))document_row, METH_FASTCALL,
     "(attrs JSON, hot values) of a JSON document, flattened; None for the Python path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_crows",
    "Rows of the events table (hot columns and attrs JSON), written in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__crows(void)
{
    return PyModule_Create(&module);
}
