/*
 * shmkit's optional CPython accelerator: per-item calls into libshmkit's ring and mempool
 * operations (csrc/ops.c) and heap alloc/free (csrc/ops_heap.c) without ctypes. Python's ctypes spends about 250 ns converting arguments
 * per call; a METH_FASTCALL built-in function bound to one object's process-local state spends a
 * few tens. It contains no shared-memory logic: it calls the very libshmkit functions ctypes would
 * (their addresses come from the loaded library), so there is still one implementation in C.
 *
 * bind(fn_address, kind, local_address, keep) -> a callable:
 *   kind 0: int32 fn(local, uint32 value)  called as f(value)   (shmkit_ring_enqueue1)
 *   kind 1: int64 fn(local)                called as f()        (shmkit_ring_dequeue1)
 *   kind 2: int32 fn(local)                called as f()        (shmkit_mempool_get)
 *   kind 3: int32 fn(local, int32 index)   called as f(index)   (shmkit_mempool_put, shmkit_chan_release)
 *   kind 4: int64 fn(local, double n, uint32 align, uint32 flags)  called as f(n, align, flags)  (shmkit_heap_alloc)
 *   kind 5: int32 fn(local, double offset, uint32 flags)           called as f(offset, flags)    (shmkit_heap_free)
 *   kind 6: int32 fn(local, const uint8 *data, uint32 n)  called as f(buffer)  (shmkit_chan_send): any
 *           C-contiguous buffer (bytes, bytearray, memoryview, ...), passed in place
 * bind_or(fn_address, kind, local_address, keep, slow, self_ref) -> a callable with a fallback:
 *   kind 0: f(value) calls fn and returns None when it enqueued (1); any other call or result
 *           (keywords, a second argument, a value that is not a u32 int, full, an error, a closed
 *           ring) goes to slow(self, *args, **kwargs)  (Ring.enqueue itself)
 *   kind 1: f() returns fn's value when it is >= 0; otherwise slow(self, *args, **kwargs)
 *           (Ring.dequeue itself: it tries again, waits, and raises what is to be raised)
 *   `self_ref` is a weak reference to the object (no cycle through the instance attribute).
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
typedef int64_t (*fn_heap_alloc)(void *, double, uint32_t, uint32_t);
typedef int32_t (*fn_heap_free)(void *, double, uint32_t);
typedef int32_t (*fn_buf)(void *, const uint8_t *, uint32_t);

typedef struct {
	PyObject_HEAD void *fn;
	void *local;
	int kind;
	PyObject *keep;
	PyObject *slow;     /* bind_or: the Python method the call falls back to */
	PyObject *self_ref; /* bind_or: weak reference to its object */
} OpObject;

static void op_dealloc(OpObject *self)
{
	Py_XDECREF(self->keep);
	Py_XDECREF(self->slow);
	Py_XDECREF(self->self_ref);
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

/* An int (the caller range-checked it) as the double libshmkit takes. */
static int as_double(PyObject *v, double *out)
{
	if (!PyLong_Check(v)) {
		PyErr_SetString(PyExc_TypeError, "an int is required");
		return -1;
	}
	*out = PyLong_AsDouble(v);
	return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

/* A uint32 argument. */
static int as_u32(PyObject *v, uint32_t *out)
{
	unsigned long a = PyLong_AsUnsignedLong(v);
	if (a == (unsigned long)-1 && PyErr_Occurred())
		return -1;
	if (a > 0xFFFFFFFFul) {
		PyErr_SetString(PyExc_OverflowError, "value does not fit in 32 bits");
		return -1;
	}
	*out = (uint32_t)a;
	return 0;
}

static PyObject *call_heap_alloc(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	OpObject *op = (OpObject *)self;
	if (nargs != 3) {
		PyErr_Format(PyExc_TypeError, "alloc takes exactly three arguments (%zd given)", nargs);
		return NULL;
	}
	double n;
	uint32_t a, f;
	if (as_double(args[0], &n) < 0 || as_u32(args[1], &a) < 0 || as_u32(args[2], &f) < 0)
		return NULL;
	return PyLong_FromLongLong(((fn_heap_alloc)op->fn)(op->local, n, a, f));
}

static PyObject *call_heap_free(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	OpObject *op = (OpObject *)self;
	if (nargs != 2) {
		PyErr_Format(PyExc_TypeError, "free takes exactly two arguments (%zd given)", nargs);
		return NULL;
	}
	double o;
	uint32_t f;
	if (as_double(args[0], &o) < 0 || as_u32(args[1], &f) < 0)
		return NULL;
	return PyLong_FromLong(((fn_heap_free)op->fn)(op->local, o, f));
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

static PyMethodDef KIND_DEFS[7] = {
	{"enqueue1", (PyCFunction)(void (*)(void))call_u32, METH_FASTCALL, NULL},
	{"dequeue1", (PyCFunction)(void (*)(void))call_void64, METH_FASTCALL, NULL},
	{"get", (PyCFunction)(void (*)(void))call_void32, METH_FASTCALL, NULL},
	{"put", (PyCFunction)(void (*)(void))call_i32, METH_FASTCALL, NULL},
	{"alloc", (PyCFunction)(void (*)(void))call_heap_alloc, METH_FASTCALL, NULL},
	{"free", (PyCFunction)(void (*)(void))call_heap_free, METH_FASTCALL, NULL},
	{"send", (PyCFunction)(void (*)(void))call_buf, METH_FASTCALL, NULL},
};

/* bind_or's fallback: slow(self, *args, **kwargs) with the object behind the weak reference. */
static PyObject *fall_back(OpObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
	PyObject *obj = PyWeakref_GetObject(op->self_ref); /* borrowed */
	if (obj == NULL)
		return NULL;
	if (obj == Py_None) {
		PyErr_SetString(PyExc_ReferenceError, "the object of this method no longer exists");
		return NULL;
	}
	Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
	Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
	PyObject *small[8];
	PyObject **stack = total + 1 <= 8 ? small : PyMem_Malloc((size_t)(total + 1) * sizeof(PyObject *));
	if (stack == NULL)
		return PyErr_NoMemory();
	Py_INCREF(obj);
	stack[0] = obj;
	for (Py_ssize_t i = 0; i < total; i++)
		stack[i + 1] = args[i];
	PyObject *r = PyObject_Vectorcall(op->slow, stack, (size_t)nargs + 1, kwnames);
	Py_DECREF(obj);
	if (stack != small)
		PyMem_Free(stack);
	return r;
}

static PyObject *call_enqueue_or(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
	OpObject *op = (OpObject *)self;
	if (PyVectorcall_NARGS(nargsf) == 1 && kwnames == NULL && PyLong_CheckExact(args[0])) {
		unsigned long v = PyLong_AsUnsignedLong(args[0]);
		if (v == (unsigned long)-1 && PyErr_Occurred())
			PyErr_Clear(); /* negative or too large: the slow path raises the right error */
		else if (v <= 0xFFFFFFFFul && ((fn_u32)op->fn)(op->local, (uint32_t)v) == 1)
			Py_RETURN_NONE;
	}
	return fall_back(op, args, nargsf, kwnames);
}

static PyObject *call_dequeue_or(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
	OpObject *op = (OpObject *)self;
	if (PyVectorcall_NARGS(nargsf) == 0 && kwnames == NULL) {
		int64_t r = ((fn_void64)op->fn)(op->local);
		if (r >= 0)
			return PyLong_FromLongLong(r);
	}
	return fall_back(op, args, nargsf, kwnames);
}

static PyMethodDef OR_DEFS[2] = {
	{"enqueue", (PyCFunction)(void (*)(void))call_enqueue_or, METH_FASTCALL | METH_KEYWORDS, NULL},
	{"dequeue", (PyCFunction)(void (*)(void))call_dequeue_or, METH_FASTCALL | METH_KEYWORDS, NULL},
};

/* The Op of bind/bind_or: args[0..3] = fn_address, kind (0..max_kind), local_address, keep. */
static OpObject *new_op(PyObject *const *args, long max_kind, const char *name)
{
	void *fn = PyLong_AsVoidPtr(args[0]);
	void *local = fn ? PyLong_AsVoidPtr(args[2]) : NULL;
	if (fn == NULL || local == NULL) {
		if (!PyErr_Occurred())
			PyErr_Format(PyExc_ValueError, "%s: null function or local address", name);
		return NULL;
	}
	long kind = PyLong_AsLong(args[1]);
	if (kind == -1 && PyErr_Occurred())
		return NULL;
	if (kind < 0 || kind > max_kind) {
		PyErr_Format(PyExc_ValueError, "%s: kind must be 0..%ld", name, max_kind);
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
	op->slow = NULL;
	op->self_ref = NULL;
	return op;
}

static PyObject *bind(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
	(void)module;
	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError, "bind(fn_address, kind, local_address, keep)");
		return NULL;
	}
	OpObject *op = new_op(args, 6, "bind");
	if (op == NULL)
		return NULL;
	PyObject *f = PyCFunction_NewEx(&KIND_DEFS[op->kind], (PyObject *)op, NULL);
	Py_DECREF(op); /* the function holds its own reference */
	return f;
}

static PyObject *bind_or(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
	(void)module;
	if (nargs != 6) {
		PyErr_SetString(PyExc_TypeError, "bind_or(fn_address, kind, local_address, keep, slow, self_ref)");
		return NULL;
	}
	if (!PyCallable_Check(args[4]) || !PyWeakref_CheckRef(args[5])) {
		PyErr_SetString(PyExc_TypeError, "bind_or: slow must be callable and self_ref a weakref.ref");
		return NULL;
	}
	OpObject *op = new_op(args, 1, "bind_or"); /* 0 enqueue, 1 dequeue */
	if (op == NULL)
		return NULL;
	Py_INCREF(args[4]);
	op->slow = args[4];
	Py_INCREF(args[5]);
	op->self_ref = args[5];
	PyObject *f = PyCFunction_NewEx(&OR_DEFS[op->kind], (PyObject *)op, NULL);
	Py_DECREF(op);
	return f;
}

static PyMethodDef METHODS[] = {
	{"bind", (PyCFunction)(void (*)(void))bind, METH_FASTCALL, "bind(fn_address, kind, local_address, keep)"},
	{"bind_or", (PyCFunction)(void (*)(void))bind_or, METH_FASTCALL,
	 "bind_or(fn_address, kind, local_address, keep, slow, self_ref)"},
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
