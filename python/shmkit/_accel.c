/*
 * shmkit's optional CPython accelerator: per-item calls into libshmkit's ring and mempool
 * operations (csrc/ops.c) without ctypes. Python's ctypes spends about 250 ns converting arguments
 * per call; a METH_FASTCALL built-in function bound to one object's process-local state spends a
 * few tens. It contains no shared-memory logic: it calls the very libshmkit functions ctypes would
 * (their addresses come from the loaded library), so there is still one implementation in C.
 *
 * bind(fn_address, kind, local_address, keep) -> a callable:
 *   kind 0: int32 fn(local, uint32 value)  called as f(value)   (shmkit_ring_enqueue1)
 *   kind 1: int64 fn(local)                called as f()        (shmkit_ring_dequeue1)
 *   kind 2: int32 fn(local)                called as f()        (shmkit_mempool_get)
 *   kind 3: int32 fn(local, int32 index)   called as f(index)   (shmkit_mempool_put, shmkit_chan_release)
 *   kind 4: int32 fn(local, const uint8 *data, uint32 n)  called as f(buffer)  (shmkit_chan_send): any
 *           C-contiguous buffer (bytes, bytearray, memoryview, ...), passed in place
 * `keep` (the ctypes struct holding the local state) stays referenced as long as the callable, so
 * the address stays valid. Value arguments are range-checked here (OverflowError / TypeError),
 * before C sees them.
 *
 * Built on first use by shmkit/_accel.py (cc + Python.h) or by `pip install` (setup.py); when
 * neither works, shmkit uses ctypes, with the same results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef int32_t (*fn_u32)(void *, uint32_t);
typedef int64_t (*fn_void64)(void *);
typedef int32_t (*fn_void32)(void *);
typedef int32_t (*fn_i32)(void *, int32_t);
typedef int32_t (*fn_buf)(void *, const uint8_t *, uint32_t);

typedef struct {
	PyObject_HEAD void *fn;
	void *local;
	int kind;
	PyObject *keep;
} OpObject;

static void op_dealloc(OpObject *self)
{
	Py_XDECREF(self->keep);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OpType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._accel.Op",
	.tp_basicsize = sizeof(OpObject),
	.tp_dealloc = (destructor)op_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "process-local state bound to one libshmkit function",
};

static int one_arg(Py_ssize_t nargs, const char *name)
{
	if (nargs != 1) {
		PyErr_Format(PyExc_TypeError, "%s takes exactly one argument (%zd given)", name, nargs);
		return -1;
	}
	return 0;
}

static PyObject *call_u32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	OpObject *op = (OpObject *)self;
	if (one_arg(nargs, "enqueue1") < 0)
		return NULL;
	unsigned long v = PyLong_AsUnsignedLong(args[0]);
	if (v == (unsigned long)-1 && PyErr_Occurred())
		return NULL;
	if (v > 0xFFFFFFFFul) {
		PyErr_SetString(PyExc_OverflowError, "value does not fit in 32 bits");
		return NULL;
	}
	return PyLong_FromLong(((fn_u32)op->fn)(op->local, (uint32_t)v));
}

static PyObject *call_void64(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	OpObject *op = (OpObject *)self;
	if (nargs != 0) {
		PyErr_SetString(PyExc_TypeError, "dequeue1 takes no arguments");
		return NULL;
	}
	return PyLong_FromLongLong(((fn_void64)op->fn)(op->local));
}

static PyObject *call_void32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	OpObject *op = (OpObject *)self;
	if (nargs != 0) {
		PyErr_SetString(PyExc_TypeError, "get takes no arguments");
		return NULL;
	}
	return PyLong_FromLong(((fn_void32)op->fn)(op->local));
}

static PyObject *call_i32(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	OpObject *op = (OpObject *)self;
	if (one_arg(nargs, "put") < 0)
		return NULL;
	long v = PyLong_AsLong(args[0]);
	if (v == -1 && PyErr_Occurred())
		return NULL;
	if (v < INT32_MIN || v > INT32_MAX) {
		PyErr_SetString(PyExc_OverflowError, "index does not fit in 32 bits");
		return NULL;
	}
	return PyLong_FromLong(((fn_i32)op->fn)(op->local, (int32_t)v));
}

static PyObject *call_buf(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	OpObject *op = (OpObject *)self;
	if (one_arg(nargs, "send") < 0)
		return NULL;
	Py_buffer view;
	if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
		return NULL;
	if (view.len < 0 || (unsigned long long)view.len > 0xFFFFFFFFull) {
		PyBuffer_Release(&view);
		PyErr_SetString(PyExc_OverflowError, "the buffer is longer than 2**32 - 1 bytes");
		return NULL;
	}
	int32_t r = ((fn_buf)op->fn)(op->local, (const uint8_t *)view.buf, (uint32_t)view.len);
	PyBuffer_Release(&view);
	return PyLong_FromLong(r);
}

static PyMethodDef KIND_DEFS[5] = {
	{"enqueue1", (PyCFunction)(void (*)(void))call_u32, METH_FASTCALL, NULL},
	{"dequeue1", (PyCFunction)(void (*)(void))call_void64, METH_FASTCALL, NULL},
	{"get", (PyCFunction)(void (*)(void))call_void32, METH_FASTCALL, NULL},
	{"put", (PyCFunction)(void (*)(void))call_i32, METH_FASTCALL, NULL},
	{"send", (PyCFunction)(void (*)(void))call_buf, METH_FASTCALL, NULL},
};

static PyObject *bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
	(void)module;
	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError, "bind(fn_address, kind, local_address, keep)");
		return NULL;
	}
	void *fn = PyLong_AsVoidPtr(args[0]);
	if (fn == NULL) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "bind: null function address");
		return NULL;
	}
	long kind = PyLong_AsLong(args[1]);
	if (kind == -1 && PyErr_Occurred())
		return NULL;
	if (kind < 0 || kind > 4) {
		PyErr_SetString(PyExc_ValueError, "bind: kind must be 0..4");
		return NULL;
	}
	void *local = PyLong_AsVoidPtr(args[2]);
	if (local == NULL) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_ValueError, "bind: null local address");
		return NULL;
	}
	OpObject *op = PyObject_New(OpObject, &OpType);
	if (op == NULL)
		return NULL;
	op->fn = fn;
	op->local = local;
	op->kind = (int)kind;
	Py_INCREF(args[3]);
	op->keep = args[3];
	PyObject *f = PyCFunction_NewEx(&KIND_DEFS[kind], (PyObject *)op, NULL);
	Py_DECREF(op); /* the function holds its own reference */
	return f;
}

static PyMethodDef METHODS[] = {
	{"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL, "bind(fn_address, kind, local_address, keep)"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
	PyModuleDef_HEAD_INIT, "_shmkit_accel", "shmkit's per-item call accelerator (optional)", -1, METHODS,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__shmkit_accel(void)
{
	if (PyType_Ready(&OpType) < 0)
		return NULL;
	return PyModule_Create(&MODULE);
}
