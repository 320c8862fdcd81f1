//! The loop's scheduling methods, `call_soon`, `call_soon_threadsafe`,
//! `call_later` and `call_at`, as C API methods called through vectorcall.
//!
//! These are the calls every asyncio program makes most: each future's
//! completion schedules its callbacks with `call_soon`. A `#[pymethods]`
//! function with the signature `(callback, *args, context=None)` goes through
//! PyO3's general argument extraction, which builds a tuple for `*args` on
//! every call. Here the arguments arrive as the C array CPython already has
//! (`METH_FASTCALL | METH_KEYWORDS`), the only keyword is compared by
//! identity with its interned name, and up to two arguments go straight into
//! the handle without a tuple. The methods are put on each loop class when the
//! module is loaded ([`install`]), as method descriptors of that class, so
//! CPython checks that `self` is an instance of it before calling.
//!
//! `create_future` and `get_debug` are here too, as `METH_NOARGS` functions:
//! asyncio calls both for every future (`Future.__init__` asks the loop for
//! its debug flag), and for methods this small PyO3's generated wrapper was a
//! large share of the call. So is the native transport's `write`
//! ([`install_transport`]): a protocol calls it for every message it sends.

use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple, PyType};
use pyo3::Borrowed;
use pyo3::{ffi, intern};

use crate::boundary;
use crate::clock::monotonic;
use crate::event_loop::LoopCore;
use crate::handle::{ArgRefs, HandleRef};
use crate::transport::TcpTransportCore;

/// A loop class: a `#[pyclass]` around a [`LoopCore`] (one per phase, stamped
/// by `event_loop_class!`).
pub(crate) trait LoopClass:
    pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync
{
    /// The phase's queue.
    type Queue: pyloop_core::ReadyQueue<HandleRef>;

    /// The loop's state.
    fn loop_core(&self) -> &LoopCore<Self::Queue>;
}

/// The arguments of one call, split as the methods take them (borrowed from
/// the caller's array: no reference is taken until the handle keeps one).
struct Parsed<'a, 'py> {
    /// The positional arguments before the callback's own (`delay`, `when`).
    leading: &'a [*mut ffi::PyObject],
    callback: Borrowed<'a, 'py, PyAny>,
    /// The callback's own positional arguments.
    rest: ArgRefs<'a>,
    context: Option<Borrowed<'a, 'py, PyAny>>,
}

/// Splits a vectorcall's arguments for `method(<leading...>, callback, *args,
/// context=None)`, raising CPython's `TypeError`s for a missing argument or an
/// unknown keyword. Inlined into each entry point: it runs on every call, and
/// its rare paths (an error, a keyword) are functions of their own.
///
/// # Safety
/// `args` must point to `nargs` positional arguments followed by one value per
/// name in `kwnames` (NULL or a tuple of strings), all alive for `'a`: what
/// CPython passes to a `METH_FASTCALL | METH_KEYWORDS` function.
#[inline(always)]
unsafe fn parse<'a, 'py>(
    py: Python<'py>,
    method: &str,
    leading_names: &[&str],
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Parsed<'a, 'py>> {
    let nargs = nargs.max(0) as usize;
    let lead = leading_names.len();
    if nargs <= lead {
        return Err(missing_arguments(method, leading_names, nargs));
    }
    let nkw = if kwnames.is_null() {
        0
    } else {
        // safety: kwnames is a tuple when not NULL (the calling convention).
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) }.max(0) as usize
    };
    // safety: the calling convention: nargs + nkw live pointers at `args`
    // (at least one, the callback, checked above).
    let all: &'a [*mut ffi::PyObject] = unsafe { std::slice::from_raw_parts(args, nargs + nkw) };
    let context = if nkw == 0 {
        None
    } else if nkw == 1
        // safety: kwnames is a tuple of one name here.
        && unsafe { ffi::PyTuple_GET_ITEM(kwnames, 0) } == SEEN_CONTEXT_KEYWORD.load(Relaxed)
    {
        // The usual keyword call, `context=` from asyncio's C code: the name
        // is the string remembered by `is_context_keyword`.
        // safety: the one keyword value, after the positionals, alive for 'a.
        Some(unsafe { Borrowed::from_ptr(py, all[nargs]) })
    } else {
        // safety: as for this function (the values follow the positionals).
        unsafe { keyword_context(py, method, kwnames, &all[nargs..])? }
    };
    Ok(Parsed {
        leading: &all[..lead],
        // safety: a live positional argument (index < nargs), alive for 'a.
        callback: unsafe { Borrowed::from_ptr(py, all[lead]) },
        // safety: the positionals after the callback, alive for 'a.
        rest: unsafe { ArgRefs::from_raw(&all[lead + 1..nargs]) },
        context,
    })
}

/// True for a call that passes a required argument (the callback, `delay`,
/// `when`) by keyword, as asyncio's Python signatures allow: fewer
/// positional arguments than required, and keywords.
#[inline(always)]
fn named_in_place(
    nargs: ffi::Py_ssize_t,
    leading_names: &[&str],
    kwnames: *mut ffi::PyObject,
) -> bool {
    nargs.max(0) as usize <= leading_names.len() && !kwnames.is_null()
}

/// A call that names a required argument by keyword (`call_soon(callback=f)`,
/// `call_later(delay=1, callback=f)`), made again with those arguments moved
/// into their positions; asyncio's `TypeError`s for a duplicate, unknown or
/// missing one. Rare, so it goes the long way, through Python.
///
/// # Safety
/// As for [`parse`]; `slf` is the loop the method was called on.
#[cold]
#[inline(never)]
unsafe fn call_with_names_in_place(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    method: &str,
    leading_names: &[&str],
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let nargs = nargs.max(0) as usize;
    // safety: kwnames is a tuple when not NULL (checked by the caller).
    let names = unsafe { Borrowed::from_ptr(py, kwnames) }.cast::<PyTuple>()?;
    // safety: the calling convention: nargs + len(kwnames) live pointers.
    let all = unsafe { std::slice::from_raw_parts(args, nargs + names.len()) };
    let required: Vec<&str> = leading_names.iter().copied().chain(["callback"]).collect();
    let mut slots: Vec<Option<Bound<'_, PyAny>>> = vec![None; required.len()];
    for (slot, &arg) in slots.iter_mut().zip(&all[..nargs]) {
        // safety: a live positional argument of this call.
        *slot = Some(unsafe { Bound::from_borrowed_ptr(py, arg) });
    }
    let keywords = PyDict::new(py);
    for (name, &value) in names.iter().zip(&all[nargs..]) {
        // safety: a live keyword value of this call.
        let value = unsafe { Bound::from_borrowed_ptr(py, value) };
        let text: String = name.extract()?;
        match required.iter().position(|r| *r == text) {
            Some(i) if i < nargs => {
                return Err(PyTypeError::new_err(format!(
                    "{method}() got multiple values for argument '{text}'"
                )))
            }
            Some(i) => slots[i] = Some(value),
            None if text == "context" => keywords.set_item(name, value)?,
            None => {
                return Err(PyTypeError::new_err(format!(
                    "{method}() got an unexpected keyword argument '{text}'"
                )))
            }
        }
    }
    let missing: Vec<String> = required
        .iter()
        .zip(&slots)
        .filter(|(_, slot)| slot.is_none())
        .map(|(name, _)| format!("'{name}'"))
        .collect();
    if !missing.is_empty() {
        return Err(PyTypeError::new_err(format!(
            "{method}() missing {} required positional argument{}: {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(" and ")
        )));
    }
    let positional = PyTuple::new(py, slots.into_iter().flatten().collect::<Vec<_>>())?;
    // safety: `slf`, the loop the method was called on, alive for the call.
    let event_loop = unsafe { Bound::from_borrowed_ptr(py, slf) };
    Ok(event_loop
        .call_method(method, positional, Some(&keywords))?
        .into_ptr())
}

/// CPython's `TypeError` for a call with `nargs` positional arguments where
/// `leading_names` and the callback are required.
#[cold]
#[inline(never)]
fn missing_arguments(method: &str, leading_names: &[&str], nargs: usize) -> PyErr {
    let mut names: Vec<String> = leading_names.iter().map(|n| format!("'{n}'")).collect();
    names.push("'callback'".to_string());
    let missing = &names[nargs..];
    let list = match missing {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    };
    PyTypeError::new_err(format!(
        "{method}() missing {} required positional argument{}: {list}",
        missing.len(),
        if missing.len() == 1 { "" } else { "s" }
    ))
}

/// The value of the `context` keyword among `values` (one per name in
/// `kwnames`), or the `TypeError` for any other keyword.
///
/// # Safety
/// `kwnames` must be a tuple of as many strings as `values` has items, and
/// the values live objects, all alive for `'a`.
#[inline(never)]
unsafe fn keyword_context<'a, 'py>(
    py: Python<'py>,
    method: &str,
    kwnames: *mut ffi::PyObject,
    values: &'a [*mut ffi::PyObject],
) -> PyResult<Option<Borrowed<'a, 'py, PyAny>>> {
    let wanted = intern!(py, "context");
    let mut context = None;
    for (i, &value) in values.iter().enumerate() {
        // safety: `i` < the tuple's size; a borrowed reference to an item,
        // alive as long as the tuple, which the caller keeps for 'a.
        let name = unsafe { Borrowed::from_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, i as _)) };
        if name.is(wanted) || is_context_keyword(&name)? {
            // safety: the caller's contract: a live value for 'a.
            context = Some(unsafe { Borrowed::from_ptr(py, value) });
        } else {
            return Err(PyTypeError::new_err(format!(
                "{method}() got an unexpected keyword argument '{}'",
                name.str()?
            )));
        }
    }
    Ok(context)
}

/// The string "context" that `is_context_keyword` found first and keeps
/// alive (null until then): `parse` recognises the usual keyword call by it.
static SEEN_CONTEXT_KEYWORD: AtomicPtr<ffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// True if `name` is the string "context". Callers rarely pass our interned
/// copy of it: CPython's C code (`_asyncio`'s futures and tasks) passes its
/// own static string. The first other string found equal is remembered, so
/// that later calls from the same place are an identity test, not a comparison.
fn is_context_keyword(name: &Bound<'_, PyAny>) -> PyResult<bool> {
    let seen = &SEEN_CONTEXT_KEYWORD;
    if seen.load(Relaxed) == name.as_ptr() {
        return Ok(true);
    }
    if !name.eq(intern!(name.py(), "context"))? {
        return Ok(false);
    }
    // The first such string is kept alive for good (one string per process):
    // the stored pointer is only compared, but must never be reused by
    // another object.
    if seen.load(Relaxed).is_null() {
        let kept = name.clone().into_ptr();
        if seen
            .compare_exchange(std::ptr::null_mut(), kept, Relaxed, Relaxed)
            .is_err()
        {
            // safety: attached; the reference taken just above, not stored.
            unsafe { ffi::Py_DECREF(kept) };
        }
    }
    Ok(true)
}

/// The loop behind `slf`.
///
/// # Safety
/// `slf` must be an instance of `C` (CPython checks it for a method
/// descriptor of `C` before calling), alive for `'a`.
unsafe fn core_of<'a, C: LoopClass>(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
) -> &'a LoopCore<C::Queue> {
    // safety: the caller's contract; `C` is frozen, so `get` needs no borrow.
    let bound: &Bound<'_, C> = unsafe { Bound::ref_from_ptr(py, &slf).cast_unchecked::<C>() };
    let core: *const LoopCore<C::Queue> = bound.get().loop_core();
    // safety: `slf` outlives the call and the core lives as long as `slf`.
    unsafe { &*core }
}

/// A number argument (`delay`, `when`) as `f64`, with asyncio's errors: a
/// `TypeError` for `None` or a non-number, `ValueError` for NaN; an `int`
/// (of any subclass) by its value, as asyncio compares it; any other
/// error of the conversion (`OverflowError`, or whatever a `__float__`
/// raises, `KeyboardInterrupt` included) as it is.
fn number(
    value: *mut ffi::PyObject,
    py: Python<'_>,
    what: &str,
    none_message: &str,
) -> PyResult<f64> {
    // safety: a live positional argument of this call.
    let value: Bound<'_, PyAny> = unsafe { Bound::from_borrowed_ptr(py, value) };
    if value.is_none() {
        return Err(PyTypeError::new_err(none_message.to_string()));
    }
    if value.is_instance_of::<PyInt>() {
        // By value, as asyncio compares an `int` deadline, not through a
        // subclass's `__float__`; `OverflowError` past a float's range.
        // safety: attached (the token), `value` a live int.
        let number = unsafe { ffi::PyLong_AsDouble(value.as_ptr()) };
        if number == -1.0 {
            if let Some(err) = PyErr::take(py) {
                return Err(err);
            }
        }
        return Ok(number);
    }
    let number: f64 = value.extract().map_err(|err: PyErr| {
        if !err.is_instance_of::<PyTypeError>(py) {
            return err;
        }
        PyTypeError::new_err(format!(
            "{what} must be a number, not {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    if number.is_nan() {
        return Err(PyValueError::new_err(format!("{what} must not be NaN")));
    }
    Ok(number)
}

/// `call_later`'s deadline, `loop.time() + delay` as asyncio computes it: a
/// `float` or an `int` directly (an `int` too large for a float raises
/// `OverflowError`, as the addition does), anything else through Python's
/// addition, so that a type `float + delay` refuses (`Decimal`, an object
/// with only `__float__`) raises asyncio's `TypeError`.
fn deadline_after(value: *mut ffi::PyObject, py: Python<'_>) -> PyResult<f64> {
    // safety: a live positional argument of this call.
    let delay: Bound<'_, PyAny> = unsafe { Bound::from_borrowed_ptr(py, value) };
    let now = monotonic();
    if delay.is_exact_instance_of::<PyFloat>() || delay.is_exact_instance_of::<PyInt>() {
        return Ok(now + number(value, py, "delay", "delay must not be None")?);
    }
    if delay.is_none() {
        return Err(PyTypeError::new_err("delay must not be None"));
    }
    let when = PyFloat::new(py, now).add(&delay)?;
    let when = number(when.as_ptr(), py, "delay", "delay must not be None")?;
    Ok(when)
}

// ANCHOR: call_soon
unsafe extern "C" fn call_soon<C: LoopClass>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if named_in_place(nargs, &[], kwnames) {
        // safety: as below.
        return unsafe {
            boundary::enter(|py| {
                call_with_names_in_place(py, slf, "call_soon", &[], args, nargs, kwnames)
            })
        };
    }
    // safety: CPython calls a method attached, with its calling convention.
    unsafe {
        boundary::enter(|py| {
            let p = parse(py, "call_soon", &[], args, nargs, kwnames)?;
            let core = core_of::<C>(py, slf);
            Ok(core
                .call_soon(py, &p.callback, p.rest, p.context.as_deref(), false)?
                .into_ptr())
        })
    }
}
// ANCHOR_END: call_soon

unsafe extern "C" fn call_soon_threadsafe<C: LoopClass>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if named_in_place(nargs, &[], kwnames) {
        // safety: as below.
        return unsafe {
            boundary::enter(|py| {
                call_with_names_in_place(py, slf, "call_soon_threadsafe", &[], args, nargs, kwnames)
            })
        };
    }
    // safety: as in `call_soon`.
    unsafe {
        boundary::enter(|py| {
            let p = parse(py, "call_soon_threadsafe", &[], args, nargs, kwnames)?;
            let core = core_of::<C>(py, slf);
            Ok(core
                .call_soon(py, &p.callback, p.rest, p.context.as_deref(), true)?
                .into_ptr())
        })
    }
}

unsafe extern "C" fn call_later<C: LoopClass>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if named_in_place(nargs, &["delay"], kwnames) {
        // safety: as below.
        return unsafe {
            boundary::enter(|py| {
                call_with_names_in_place(py, slf, "call_later", &["delay"], args, nargs, kwnames)
            })
        };
    }
    // safety: as in `call_soon`.
    unsafe {
        boundary::enter(|py| {
            let p = parse(py, "call_later", &["delay"], args, nargs, kwnames)?;
            let when = deadline_after(p.leading[0], py)?;
            let core = core_of::<C>(py, slf);
            Ok(core
                .call_at(
                    py,
                    "call_later",
                    when,
                    &p.callback,
                    p.rest,
                    p.context.as_deref(),
                )?
                .into_ptr())
        })
    }
}

unsafe extern "C" fn call_at<C: LoopClass>(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if named_in_place(nargs, &["when"], kwnames) {
        // safety: as below.
        return unsafe {
            boundary::enter(|py| {
                call_with_names_in_place(py, slf, "call_at", &["when"], args, nargs, kwnames)
            })
        };
    }
    // safety: as in `call_soon`.
    unsafe {
        boundary::enter(|py| {
            let p = parse(py, "call_at", &["when"], args, nargs, kwnames)?;
            let core = core_of::<C>(py, slf);
            // As asyncio: `None` is refused first, then a closed loop, and
            // only then is the deadline read (asyncio never converts it).
            if p.leading[0] == ffi::Py_None() {
                return Err(PyTypeError::new_err("when cannot be None"));
            }
            core.check_closed()?;
            let when = number(p.leading[0], py, "when", "when cannot be None")?;
            Ok(core
                .call_at(
                    py,
                    "call_at",
                    when,
                    &p.callback,
                    p.rest,
                    p.context.as_deref(),
                )?
                .into_ptr())
        })
    }
}

/// `create_future()` as a `METH_NOARGS` function: for a method this small,
/// PyO3's generated wrapper (its trampoline and the type check of `self`) was
/// a large share of the call, and asyncio calls it for every future.
unsafe extern "C" fn create_future<C: LoopClass>(
    slf: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: as in `call_soon`.
    unsafe {
        boundary::enter(|py| {
            let core = core_of::<C>(py, slf);
            let event_loop = Borrowed::from_ptr(py, slf);
            Ok(core.create_future(&event_loop)?.into_ptr())
        })
    }
}

/// `get_debug()` as a `METH_NOARGS` function: asyncio's `Future.__init__`
/// calls it for every future and task.
unsafe extern "C" fn get_debug<C: LoopClass>(
    slf: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: as in `call_soon`.
    unsafe {
        boundary::enter(|py| {
            let core = core_of::<C>(py, slf);
            Ok(PyBool::new(py, core.get_debug()).to_owned().into_ptr())
        })
    }
}

// ANCHOR: transport_write
/// `TcpTransportCore.write(data)` as a `METH_FASTCALL | METH_KEYWORDS`
/// function: a protocol's `transport.write` is this method, bound to the
/// core, and PyO3's generated wrapper (its general argument extraction and
/// trampoline) cost as much as the checks of the write itself.
unsafe extern "C" fn transport_write(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: as in `call_soon`; the descriptor made in `install_transport`
    // checked that `slf` is a `TcpTransportCore` (the cast checks again).
    unsafe {
        boundary::enter(|py| {
            let data = if nargs == 1 && kwnames.is_null() {
                Borrowed::from_ptr(py, *args)
            } else {
                one_argument(py, "write", "data", args, nargs, kwnames)?
            };
            let core = Borrowed::from_ptr(py, slf).cast::<TcpTransportCore>()?;
            TcpTransportCore::write(&core, &data)?;
            Ok(py.None().into_ptr())
        })
    }
}
// ANCHOR_END: transport_write

/// The one argument `name` of `method(name)`, passed by position or by
/// keyword; CPython's `TypeError`s for anything else.
///
/// # Safety
/// As for [`parse`]: the arguments of a `METH_FASTCALL | METH_KEYWORDS` call.
#[cold]
#[inline(never)]
unsafe fn one_argument<'a, 'py>(
    py: Python<'py>,
    method: &str,
    name: &str,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Borrowed<'a, 'py, PyAny>> {
    let nargs = nargs.max(0) as usize;
    let nkw = if kwnames.is_null() {
        0
    } else {
        // safety: kwnames is a tuple when not NULL (the calling convention).
        unsafe { ffi::PyTuple_GET_SIZE(kwnames) }.max(0) as usize
    };
    if nargs > 1 {
        return Err(PyTypeError::new_err(format!(
            "{method}() takes 1 positional argument but {nargs} were given"
        )));
    }
    // safety: the calling convention: nargs + nkw live pointers at `args`.
    let all: &'a [*mut ffi::PyObject] = if nargs + nkw == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(args, nargs + nkw) }
    };
    let mut found = (nargs == 1).then(|| all[0]);
    for i in 0..nkw {
        // safety: `i` < the tuple's size; a borrowed item of a live tuple.
        let keyword = unsafe { Borrowed::from_ptr(py, ffi::PyTuple_GET_ITEM(kwnames, i as _)) };
        let keyword = keyword.str()?;
        if keyword.to_cow()? != name {
            return Err(PyTypeError::new_err(format!(
                "{method}() got an unexpected keyword argument '{keyword}'"
            )));
        }
        if found.is_some() {
            return Err(PyTypeError::new_err(format!(
                "{method}() got multiple values for argument '{name}'"
            )));
        }
        found = Some(all[nargs + i]);
    }
    match found {
        // safety: one of the call's live arguments, alive for 'a.
        Some(value) => Ok(unsafe { Borrowed::from_ptr(py, value) }),
        None => Err(PyTypeError::new_err(format!(
            "{method}() missing 1 required positional argument: '{name}'"
        ))),
    }
}

/// Puts `write` on the transport core class (see [`transport_write`]).
pub(crate) fn install_transport(class: &Bound<'_, PyType>) -> PyResult<()> {
    put_methods(
        class,
        [(
            c"write",
            c"write($self, data)\n--\n\nQueue data (bytes, bytearray or memoryview) for sending; send at once what the kernel takes.",
            Function::FastWithKeywords(transport_write),
        )],
    )
}

/// One method table entry, kept for as long as the process runs (CPython's
/// method descriptors point into it).
struct MethodDef(std::cell::UnsafeCell<ffi::PyMethodDef>);

// safety: each entry is written once, before its descriptor is made, and only
// read by CPython afterwards.
unsafe impl Sync for MethodDef {}

/// A `METH_FASTCALL | METH_KEYWORDS` function.
type FastCall = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// A `METH_NOARGS` function.
type NoArgs = unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject;

/// A method's function and the calling convention it was written for.
#[derive(Clone, Copy)]
enum Function {
    /// `METH_FASTCALL | METH_KEYWORDS`.
    FastWithKeywords(FastCall),
    /// `METH_NOARGS`.
    NoArgs(NoArgs),
}

fn leak_def(name: &'static CStr, doc: &'static CStr, function: Function) -> *mut ffi::PyMethodDef {
    let (ml_meth, ml_flags) = match function {
        Function::FastWithKeywords(f) => (
            ffi::PyMethodDefPointer {
                PyCFunctionFastWithKeywords: f,
            },
            ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ),
        Function::NoArgs(f) => (ffi::PyMethodDefPointer { PyCFunction: f }, ffi::METH_NOARGS),
    };
    let def = Box::leak(Box::new(MethodDef(std::cell::UnsafeCell::new(
        ffi::PyMethodDef {
            ml_name: name.as_ptr(),
            ml_meth,
            ml_flags,
            ml_doc: doc.as_ptr() as *const c_char,
        },
    ))));
    def.0.get()
}

/// Puts the four scheduling methods, `create_future` and `get_debug` on the
/// loop class `C`.
pub(crate) fn install<C: LoopClass>(class: &Bound<'_, PyType>) -> PyResult<()> {
    use Function::{FastWithKeywords, NoArgs};
    let methods: [(&'static CStr, &'static CStr, Function); 6] = [
        (
            c"call_soon",
            c"call_soon($self, callback, *args, context=None)\n--\n\nArrange for callback(*args) to be called soon, in context (a copy of the current one by default).",
            FastWithKeywords(call_soon::<C>),
        ),
        (
            c"call_soon_threadsafe",
            c"call_soon_threadsafe($self, callback, *args, context=None)\n--\n\nAs call_soon, from any thread; wakes the loop.",
            FastWithKeywords(call_soon_threadsafe::<C>),
        ),
        (
            c"call_later",
            c"call_later($self, delay, callback, *args, context=None)\n--\n\nArrange for callback(*args) to be called after delay seconds.",
            FastWithKeywords(call_later::<C>),
        ),
        (
            c"call_at",
            c"call_at($self, when, callback, *args, context=None)\n--\n\nArrange for callback(*args) to be called at loop time when.",
            FastWithKeywords(call_at::<C>),
        ),
        (
            c"create_future",
            c"create_future($self, /)\n--\n\nA new asyncio.Future attached to this loop.",
            NoArgs(create_future::<C>),
        ),
        (
            c"get_debug",
            c"get_debug($self, /)\n--\n\nTrue in debug mode.",
            NoArgs(get_debug::<C>),
        ),
    ];
    put_methods(class, methods)
}

/// Makes a method descriptor of `class` for each entry and sets it on the class.
fn put_methods<const N: usize>(
    class: &Bound<'_, PyType>,
    methods: [(&'static CStr, &'static CStr, Function); N],
) -> PyResult<()> {
    let py = class.py();
    for (name, doc, function) in methods {
        let def = leak_def(name, doc, function);
        let name = PyString::new(py, name.to_str().unwrap_or_default());
        // safety: `leak_def` returns an entry that lives for ever.
        unsafe { put_method(class, &name, def)? };
    }
    Ok(())
}

/// Sets `class.name` to a new method descriptor of `class` for `def`.
///
/// # Safety
/// `def` must be a method entry that outlives `class`.
unsafe fn put_method(
    class: &Bound<'_, PyType>,
    name: &Bound<'_, PyString>,
    def: *mut ffi::PyMethodDef,
) -> PyResult<()> {
    // safety: attached (we hold a `Bound`); `class` is a type object and
    // `def` a live method entry (the caller's contract); a new descriptor or
    // NULL with an error set.
    let descr = unsafe {
        Bound::from_owned_ptr_or_err(
            class.py(),
            ffi::PyDescr_NewMethod(class.as_ptr().cast(), def),
        )?
    };
    class.setattr(name, descr)
}

// ANCHOR: own_methods
/// Gives `class` its own copy of each method descriptor it inherits from
/// `native`, a descriptor of `class` for the same C function.
///
/// CPython specialises a call such as `loop.call_soon(cb)` in Python code to
/// call the C function directly, but only while `type(self)` is exactly the
/// class the descriptor belongs to. The loop a program gets is a Python
/// subclass of the native class, so with the inherited descriptors every such
/// call fell back to the general path (`method_vectorcall_FASTCALL_KEYWORDS`
/// and a result check). The functions themselves need nothing of the class but
/// an instance of `native`, which every instance of `class` is; an instance of
/// a further subclass still passes CPython's `isinstance` check of the
/// descriptor on the general path.
#[pyfunction]
pub(crate) fn own_native_methods(
    class: &Bound<'_, PyType>,
    native: &Bound<'_, PyType>,
) -> PyResult<usize> {
    let py = class.py();
    // Only for our loop classes: the copies are made for `class`, and a C
    // method of another type may read its defining class (`METH_METHOD`),
    // which the copy would change.
    if !crate::event_loop::is_loop_class(native) {
        return Err(PyTypeError::new_err(
            "own_native_methods: the native class must be one of pyloop's loop classes",
        ));
    }
    if !class.is_subclass(native)? {
        return Err(PyTypeError::new_err(
            "own_native_methods: the class must be a subclass of the native class",
        ));
    }
    let names = native.getattr(intern!(py, "__dict__"))?;
    let mut owned = 0;
    for (name, value) in names
        .call_method0(intern!(py, "items"))?
        .try_iter()?
        .map(|item| item.and_then(|pair| pair.extract::<(Bound<'_, PyString>, Bound<'_, PyAny>)>()))
        .collect::<PyResult<Vec<_>>>()?
    {
        // safety: attached; a type check of a live object.
        let is_method =
            unsafe { ffi::Py_IS_TYPE(value.as_ptr(), &raw mut ffi::PyMethodDescr_Type) != 0 };
        // Only what `class` really inherits from `native` (nothing a class
        // between them, or `class` itself, overrides).
        if !is_method || !class.getattr(&name)?.is(&value) {
            continue;
        }
        // safety: `value` is exactly a method descriptor, whose layout is
        // `PyMethodDescrObject`; its method entry lives as long as `native`,
        // which `class` keeps alive through its bases.
        let def = unsafe { (*value.as_ptr().cast::<ffi::PyMethodDescrObject>()).d_method };
        // safety: as just said, `def` outlives `class`.
        unsafe { put_method(class, &name, def)? };
        owned += 1;
    }
    Ok(owned)
}
// ANCHOR_END: own_methods
