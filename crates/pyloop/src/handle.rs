//! `Handle` and `TimerHandle`: a scheduled callback, as asyncio has them,
//! written against CPython's C API instead of as a `#[pyclass]`.
//!
//! **Why not a `#[pyclass]`.** PyO3 makes every `#[pyclass]` a type the cyclic
//! collector tracks from the moment it is made. Every `call_soon` allocates a
//! handle, and a young collection walks every young tracked object, pending
//! handles included: measured under callgrind, the collector was the biggest
//! single cost of scheduling a callback (book: "Closing the gap"). A pending
//! `Handle` is kept off the collector's list. Both types keep up to two
//! arguments inline and call the callback through vectorcall, without
//! building an argument tuple, and reuse freed objects from a free list each
//! (the GIL guards them); one reused does not count towards a collection.
//!
//! **`TimerHandle` is a GC type.** A timer is typically pending for long (a
//! timeout), and typically kept by an object that the callback, a bound method
//! of that object, leads back to: `self._timer = loop.call_later(t, self.cb)`
//! with `self._loop = loop`. That is a cycle loop -> heap -> timer -> callback
//! -> object -> loop, in which the timer has two holders. Only a tracked timer
//! lets the collector count both (the object's `__dict__` visits it, the
//! loop's traverse visits it as one reference the heap owns, and the timer's
//! `tp_traverse` visits what it holds), so a loop dropped without `close()`
//! is collected, as asyncio's is. A timer taken from its free list is not
//! counted as an allocation by the collector, and is tracked only once its
//! state is written; it is untracked first thing in its deallocation.
//!
//! **A pending `Handle` is seen by the collector only when the loop holds it
//! alone.** A handle lets go of its callback once it has run or been
//! cancelled, so a cycle through its callback exists only while it is
//! pending. What it keeps after that is its context (for `get_context()`),
//! and a context variable can lead back to whoever holds the handle; so a
//! handle that has run or been cancelled while someone besides the loop
//! holds it is *published*: it joins the collector's list, and so does its
//! copied context (`publish`). Both types are GC types for that; a pending
//! `Handle` is simply not on the list. The
//! loop's `__traverse__` reports what a pending untracked handle holds when the
//! loop holds the only reference to it (`HandleRef::visit_contents`), so a loop
//! dropped without `close()` with a pending `call_soon(loop.stop)` is still
//! collected. A pending `Handle` that someone else also holds keeps what it
//! holds alive until it runs, is cancelled or the loop is closed, never longer:
//! reporting its contents then would be unsound (the collector could free what
//! that other holder still reaches). A `call_soon` handle is pending only until
//! the loop's next turn, so that cycle needs a loop abandoned, unclosed, with a
//! stored handle that never ran; it is left out (tests/test_memory.py).
//!
//! **The copied context.** A handle made without `context=` runs in a copy of
//! the caller's context, a new `contextvars.Context` that only the handle
//! holds. It is taken off the collector's list while that is so (it would
//! otherwise be walked by every young collection while it waits), and put back
//! before the handle lets go of it, hands it out (`get_context()`) or is
//! published: CPython requires a context to be tracked when it is destroyed.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass::{CompareOp, PyTraverseError, PyVisit};
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyList, PyTuple, PyType};
use pyo3::{ffi, intern};

use crate::boundary;
use crate::exit_park;
use crate::gil_cell::GilSlot;

/// At most this many freed `Handle`s are kept for reuse while the loop is
/// busy: enough for the backlog a burst of `call_soon_threadsafe` builds (tens
/// of thousands of callbacks queued before the loop runs them), so its handles
/// are reused instead of their memory going back to CPython's allocator and
/// coming back as freshly faulted pages (book: "Handles kept through a burst").
const HANDLE_FREELIST_MAX: usize = 1 << 16;
/// What the `Handle` list keeps once the loop has been idle a while
/// ([`release_spare_handles`]).
const HANDLE_FREELIST_IDLE: usize = 1024;
/// At most this many freed `TimerHandle`s are kept for reuse.
const TIMER_FREELIST_MAX: usize = 1024;

/// A strong reference held inside a handle, released with an immediate
/// `Py_DECREF` when dropped.
///
/// A handle's state is made, changed and destroyed only with the GIL held
/// (every path has a `Python` token or is a CPython slot). So, unlike `Py<T>`,
/// this never needs PyO3's pool of deferred releases, nor the thread-local
/// look-up `Py<T>` makes on every drop to decide whether to use it: that
/// look-up showed in the profile of `call_soon`, and a release deferred from
/// a slot CPython calls directly (`handle.cancel()`) kept a cancelled
/// callback's arguments alive past `gc.collect()`.
#[repr(transparent)]
struct Owned(NonNull<ffi::PyObject>);

impl Owned {
    fn new(object: &Bound<'_, PyAny>) -> Self {
        let ptr = object.clone().into_ptr();
        // safety: `into_ptr` of a live object is never NULL.
        Owned(unsafe { NonNull::new_unchecked(ptr) })
    }

    fn as_ptr(&self) -> *mut ffi::PyObject {
        self.0.as_ptr()
    }

    fn bind<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        // safety: a live object we hold a reference to; attached (the token).
        unsafe { Bound::from_borrowed_ptr(py, self.as_ptr()) }
    }

    /// The reference as PyO3's `Py`, for the collector's visitor.
    fn as_py(&self) -> &Py<PyAny> {
        // safety: `Owned` and `Py<PyAny>` are both one `NonNull<PyObject>`
        // (`#[repr(transparent)]`), and the reference is borrowed, not moved.
        unsafe { &*(self as *const Owned).cast::<Py<PyAny>>() }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // safety: an owned reference, dropped with the GIL held (see the type's
        // documentation: every path that drops a handle's state is attached).
        unsafe { ffi::Py_DECREF(self.0.as_ptr()) }
    }
}

/// The arguments of a callback: up to two kept inline, more in a tuple.
enum Args {
    Zero,
    One(Owned),
    Two(Owned, Owned),
    Many(Owned),
}

/// A callback and its arguments.
struct Call {
    callback: Owned,
    args: Args,
}

impl Call {
    /// Lets go of the callback and its arguments once the call has run. The
    /// last reference to one of them goes through `release_last`: its
    /// destructor may run Python code for long, in which the interpreter may
    /// end the thread at exit (`exit_park.rs`).
    #[inline(always)]
    fn release(self) {
        let Call { callback, args } = self;
        release_owned(callback);
        release_args(args);
    }
}

/// Lets go of each argument, through `release_last` if it is the last
/// reference (see [`Call::release`]).
#[inline(always)]
fn release_args(args: Args) {
    match args {
        Args::Zero => {}
        Args::One(a) | Args::Many(a) => release_owned(a),
        Args::Two(a, b) => {
            release_owned(a);
            release_owned(b);
        }
    }
}

/// Lets go of `held`, through `release_last` if it is the last reference.
#[inline(always)]
fn release_owned(held: Owned) {
    let object = held.as_ptr();
    std::mem::forget(held);
    // safety: the reference `held` owned, given up here (forgotten above),
    // attached as every path that drops a handle's state is.
    unsafe { release_reference(object) }
}

/// Lets go of what a callback returned, through `release_last` if it is the
/// last reference.
#[inline(always)]
fn release_bound(object: Bound<'_, PyAny>) {
    // safety: the reference the `Bound` owned, given up by `into_ptr`;
    // attached (the `Bound`).
    unsafe { release_reference(object.into_ptr()) }
}

/// # Safety
/// Attached; `object` is a reference the caller owns and gives up.
#[inline(always)]
unsafe fn release_reference(object: *mut ffi::PyObject) {
    // safety: as the caller promises.
    unsafe {
        if ffi::Py_REFCNT(object) == 1 {
            exit_park::release_last(object)
        } else {
            ffi::Py_DECREF(object)
        }
    }
}

impl HandleData {
    /// Puts a private context back on the collector's list: before it is
    /// handed out, and before the handle lets go of it.
    fn make_context_public(&self) {
        if self.context_private.replace(false) {
            let ptr = self.context.as_ptr();
            // safety: attached (handles are only reached with the GIL held);
            // the context is alive (we hold it). A private context is
            // untracked: we untracked it when we made it, and nothing tracks
            // a context again (CPython tracks one only when it makes it), so
            // this is not the fatal second tracking.
            unsafe {
                debug_assert_eq!(ffi::PyObject_GC_IsTracked(ptr), 0);
                ffi::PyObject_GC_Track(ptr.cast());
            }
        }
    }
}

impl Drop for HandleData {
    fn drop(&mut self) {
        // Tracked again even when we hold the only reference: a context's
        // deallocator unlinks it from the collector's list without checking
        // that it is on it (`_PyObject_GC_UNTRACK` in CPython's
        // `context_tp_dealloc`), so freeing an untracked one crashes. (The
        // fields are dropped after this, the context among them.)
        self.make_context_public();
    }
}

/// What makes a handle a `TimerHandle`.
pub(crate) struct TimerPart {
    when: f64,
    /// True while the handle is in the loop's timer heap.
    scheduled: Cell<bool>,
    /// The loop's count of timers cancelled since its last turn, which it uses
    /// to decide when to compact its heap.
    cancelled_timers: Arc<AtomicUsize>,
}

impl TimerPart {
    /// The timer part of a handle due at `when` on the loop's clock.
    pub(crate) fn new(when: f64, cancelled_timers: Arc<AtomicUsize>) -> Self {
        TimerPart {
            when,
            scheduled: Cell::new(true),
            cancelled_timers,
        }
    }
}

/// A handle's state. Reached only with the GIL held, through [`HandleRef`] or
/// the type's slots; the GIL is what makes its `Cell`s safe to share. Every
/// queued callback carries one, so it is kept small: 56 bytes, which with
/// the object's header, its weak reference list and the collector's header
/// is CPython allocator's 96-byte size class.
struct HandleData {
    /// The call to make; empty once it has run or been cancelled.
    call: GilSlot<Call>,
    /// The context the callback runs in.
    context: Owned,
    /// In debug mode, where the handle was made (asyncio's `_source_traceback`).
    source_traceback: Option<Owned>,
    /// True while `context` is a copy made for this handle alone, kept off
    /// the collector's list (see the module documentation).
    context_private: Cell<bool>,
    cancelled: Cell<bool>,
    /// True for a `TimerHandle`: a [`TimerPart`] follows the state.
    is_timer: bool,
}

// ANCHOR: handle
/// The memory layout of a handle object: the object header, the weak
/// reference list (so that `weakref.ref(handle)` works), the state, then
/// `Tail`: nothing for a `Handle`, a [`TimerPart`] for a `TimerHandle`. A
/// `Handle` does not carry a timer's fields: every queued callback is a
/// `Handle`, and without them (and with a compact state) it fits CPython
/// allocator's 96-byte size class with the collector's header (144 before).
#[repr(C)]
struct HandleObject<Tail = ()> {
    ob_base: ffi::PyObject,
    weakreflist: *mut ffi::PyObject,
    data: HandleData,
    tail: Tail,
}
// ANCHOR_END: handle

/// The timer part of the handle `object` whose state is `data`, if it is a
/// `TimerHandle`.
///
/// # Safety
/// `object` must be a live handle of one of our two types, `data` its state.
unsafe fn timer_of<'a>(object: *mut ffi::PyObject, data: &HandleData) -> Option<&'a TimerPart> {
    // safety: the caller's contract; `is_timer` is set exactly for objects
    // made with the `TimerHandle` layout, whose tail is written in `new`.
    data.is_timer
        .then(|| unsafe { &(*object.cast::<HandleObject<TimerPart>>()).tail })
}

/// The two type objects, made once per process.
struct HandleTypes {
    handle: Py<PyType>,
    timer: Py<PyType>,
    /// True if a `Handle` is allocated by [`allocate_uncounted`]: the
    /// collector's header in front of a GC object has the size this build
    /// expects (checked once, in `make_types`).
    uncounted: bool,
}

/// The collector's header in front of an object of a GC type in CPython 3.11
/// to 3.13 (`PyGC_Head`: two words, both zero while the object is untracked).
const GC_HEADER: usize = 2 * std::mem::size_of::<usize>();

// ANCHOR: allocate_uncounted
/// Memory for a new `Handle`, laid out as `PyObject_GC_New` lays out a GC
/// object (the collector's header, zeroed, then the object), but without
/// counting it towards the next young collection, which `PyObject_GC_New`
/// does for every object it makes, tracked or not. A pending handle is never
/// on the collector's list, so a collection could not find it anyway; but
/// counted, the 20,000 handles of a burst of `call_soon`s started about thirty
/// collections that each walked every pending handle through the loop's
/// traverse, and a callback cost half as much again (callgrind, `call_soon`).
/// Freed with `PyObject_Free` from the header, never `PyObject_GC_Del`, which
/// would take one off the count. Null if the memory is not there.
///
/// # Safety
/// Attached; only if `HandleTypes::uncounted` (the header has this size).
unsafe fn allocate_uncounted() -> *mut ffi::PyObject {
    // safety: attached (the caller's contract); a block of the header and the
    // object, or null.
    unsafe {
        let block = ffi::PyObject_Malloc(GC_HEADER + std::mem::size_of::<HandleObject>());
        if block.is_null() {
            return ptr::null_mut();
        }
        ptr::write_bytes(block.cast::<u8>(), 0, GC_HEADER);
        block.cast::<u8>().add(GC_HEADER).cast()
    }
}
// ANCHOR_END: allocate_uncounted

static TYPES: PyOnceLock<HandleTypes> = PyOnceLock::new();

// ANCHOR: free_list
/// Freed handle objects of one type (their memory, headers included), for
/// reuse by the same type: a `TimerHandle`'s block starts with the collector's
/// header, a `Handle`'s does not.
struct FreeList {
    objects: std::cell::UnsafeCell<Vec<NonNull<ffi::PyObject>>>,
    max: usize,
}

// safety: the list is touched only with the GIL held (allocation and
// deallocation of handles happen attached; free-threaded builds are refused in
// gil_cell.rs), so never by two threads at once.
unsafe impl Sync for FreeList {}

/// Freed `Handle`s.
static FREE: FreeList = FreeList::new(HANDLE_FREELIST_MAX);
/// Freed `TimerHandle`s, untracked, with their collector's header in front.
static FREE_TIMERS: FreeList = FreeList::new(TIMER_FREELIST_MAX);

impl FreeList {
    const fn new(max: usize) -> Self {
        FreeList {
            objects: std::cell::UnsafeCell::new(Vec::new()),
            max,
        }
    }

    fn pop(&self, _py: Python<'_>) -> Option<NonNull<ffi::PyObject>> {
        // safety: GIL held (the token), and no reference into the Vec outlives this call.
        unsafe { (*self.objects.get()).pop() }
    }

    /// Keeps `object`'s memory for reuse; false if the list is full (or has
    /// no room and cannot get it: never an abort for want of memory).
    fn push(&self, _py: Python<'_>, object: NonNull<ffi::PyObject>) -> bool {
        // safety: as in `pop`.
        let list = unsafe { &mut *self.objects.get() };
        if list.len() >= self.max || list.try_reserve(1).is_err() {
            return false;
        }
        list.push(object);
        true
    }

    fn len(&self, _py: Python<'_>) -> usize {
        // safety: as in `pop`.
        unsafe { (*self.objects.get()).len() }
    }

    /// Frees, with `free`, the objects the list holds beyond its first `keep`.
    /// `free` must run no Python code (nothing may reach the list meanwhile).
    fn free_beyond(&self, _py: Python<'_>, keep: usize, free: impl Fn(*mut ffi::PyObject)) {
        // safety: as in `pop`; `free` runs no Python code, so nothing else
        // reaches the list while this borrow lasts.
        let list = unsafe { &mut *self.objects.get() };
        if list.len() > keep {
            list.drain(keep..).for_each(|object| free(object.as_ptr()));
        }
    }

    /// Gives back the list's own storage beyond room for `keep` objects, if
    /// it has much more (and the smaller storage can be had).
    fn shrink(&self, _py: Python<'_>, keep: usize) {
        // safety: as in `pop`.
        let list = unsafe { &mut *self.objects.get() };
        if list.capacity() <= 4 * keep.max(1) {
            return;
        }
        let mut smaller = Vec::new();
        if smaller.try_reserve_exact(keep.max(list.len())).is_ok() {
            smaller.append(list);
            *list = smaller;
        }
    }
}

/// Gives back to CPython's allocator half of the freed `Handle`s kept beyond
/// [`HANDLE_FREELIST_IDLE`]. The loop calls it each time it has nothing to run
/// and is about to wait, which an idle loop does at least every
/// `MAX_IDLE_WAIT` (100 ms): a burst's handles stay for reuse while bursts
/// keep coming, and go back within a second of the loop falling idle.
pub(crate) fn release_spare_handles(py: Python<'_>) {
    release_handles_beyond(
        py,
        HANDLE_FREELIST_IDLE + FREE.len(py).saturating_sub(HANDLE_FREELIST_IDLE) / 2,
    );
}

/// Gives back every freed `Handle` kept beyond [`HANDLE_FREELIST_IDLE`]: a
/// loop that closes leaves no burst's memory behind it.
pub(crate) fn release_all_spare_handles(py: Python<'_>) {
    release_handles_beyond(py, HANDLE_FREELIST_IDLE);
}

fn release_handles_beyond(py: Python<'_>, keep: usize) {
    let Some(types) = TYPES.get(py) else {
        return;
    };
    let uncounted = types.uncounted;
    FREE.free_beyond(py, keep, |object| {
        // safety: attached; the object is a dead `Handle`'s block taken off
        // the list (nobody else has it), allocated as `handle_dealloc` frees
        // it: by `allocate_uncounted` when `uncounted`, else by
        // `PyObject_GC_New`. Freeing runs no Python code.
        unsafe { free_handle_block(object, uncounted) }
    });
    FREE.shrink(py, keep);
}

/// Frees the memory of a dead `Handle` (its state already dropped).
///
/// # Safety
/// Attached; `object` is a `Handle`'s block nobody uses, allocated by
/// `allocate_uncounted` if `uncounted`, else by `PyObject_GC_New`.
unsafe fn free_handle_block(object: *mut ffi::PyObject, uncounted: bool) {
    // safety: the caller's contract. The block starts with the collector's header.
    unsafe {
        if uncounted {
            ffi::PyObject_Free(object.cast::<u8>().sub(GC_HEADER).cast());
        } else {
            ffi::PyObject_GC_Del(object.cast());
        }
    }
}
// ANCHOR_END: free_list

/// A callback's positional arguments as CPython passed them to a C API
/// function: borrowed references, alive for the call.
#[derive(Clone, Copy)]
pub(crate) struct ArgRefs<'a> {
    ptrs: &'a [*mut ffi::PyObject],
}

impl<'a> ArgRefs<'a> {
    /// # Safety
    /// Every pointer must be a live object for `'a`, the GIL held meanwhile.
    pub(crate) unsafe fn from_raw(ptrs: &'a [*mut ffi::PyObject]) -> Self {
        ArgRefs { ptrs }
    }

    fn owned(&self, py: Python<'_>, i: usize) -> Owned {
        // safety: the constructor's contract: a live object, GIL held.
        Owned::new(&unsafe { Bound::from_borrowed_ptr(py, self.ptrs[i]) })
    }
}

/// An owned reference to a handle (a `Handle` or a `TimerHandle`).
pub struct HandleRef(Py<PyAny>);

impl HandleRef {
    /// A new handle for `callback(*args)`, in `context` (checked to be a
    /// `contextvars.Context`) or a copy of the current context. Raises
    /// `TypeError`, naming `method`, if `callback` is not callable (always,
    /// where asyncio checks only in debug mode). In `debug` mode it records
    /// where it was made, as asyncio's handles do.
    #[inline(always)]
    pub(crate) fn new(
        py: Python<'_>,
        method: &str,
        callback: &Bound<'_, PyAny>,
        args: ArgRefs<'_>,
        context: Option<&Bound<'_, PyAny>>,
        debug: bool,
        timer: Option<TimerPart>,
    ) -> PyResult<HandleRef> {
        // safety: a live object; reads its type's call slot, as
        // `PyCallable_Check` does, without the call into libpython.
        if unsafe { (*ffi::Py_TYPE(callback.as_ptr())).tp_call.is_none() } {
            return Err(PyTypeError::new_err(format!(
                "a callable object was expected by {method}(), got {}",
                callback.repr()?
            )));
        }
        let (context, context_private) = match context {
            Some(ctx) if !ctx.is_none() => {
                // safety: `ctx` is alive; the check reads its type only.
                if unsafe { ffi::PyContext_CheckExact(ctx.as_ptr()) } == 0 {
                    return Err(PyTypeError::new_err(format!(
                        "context must be a contextvars.Context, not {}",
                        ctx.get_type().name()?
                    )));
                }
                (Owned::new(ctx), false)
            }
            _ => {
                // safety: attached; a new reference or NULL with an error set.
                let copied = unsafe { ffi::PyContext_CopyCurrent() };
                let Some(copied) = NonNull::new(copied) else {
                    return Err(PyErr::fetch(py));
                };
                // Still tracked: it is untracked below, once nothing can fail
                // (an error return would drop it, and CPython requires a
                // context to be tracked when it is destroyed).
                (Owned(copied), true)
            }
        };
        let args = match args.ptrs.len() {
            0 => Args::Zero,
            1 => Args::One(args.owned(py, 0)),
            2 => Args::Two(args.owned(py, 0), args.owned(py, 1)),
            n => {
                // safety: the constructor's contract of `ArgRefs`.
                let items = (0..n).map(|i| unsafe { Bound::from_borrowed_ptr(py, args.ptrs[i]) });
                Args::Many(Owned::new(PyTuple::new(py, items)?.as_any()))
            }
        };
        let source_traceback = if debug {
            Some(Owned::new(&caller_stack(py)?))
        } else {
            None
        };
        let types = handle_types(py)?;
        let tracked = timer.is_some();
        let (ty, free) = if tracked {
            (&types.timer, &FREE_TIMERS)
        } else {
            (&types.handle, &FREE)
        };
        // (the object, and whether its header is still to be set)
        let (object, init) = match free.pop(py) {
            Some(object) => (object.as_ptr(), true),
            None if !tracked && types.uncounted => {
                // safety: attached, and `uncounted` is set.
                let raw = unsafe { allocate_uncounted() };
                if raw.is_null() {
                    // PyObject_Malloc sets no exception: this is CPython's
                    // MemoryError (not the SystemError of fetching nothing).
                    // safety: attached; sets the error and returns NULL.
                    unsafe { ffi::PyErr_NoMemory() };
                    return Err(PyErr::fetch(py));
                }
                (raw, true)
            }
            None => {
                // safety: attached; `ty` is one of our two GC types (made in
                // `make_types` with `Py_TPFLAGS_HAVE_GC`). A new, untracked
                // object (type set, reference count one) with the collector's
                // header in front, or NULL with MemoryError set. It may start
                // a collection, which cannot see this object (untracked).
                let raw = unsafe { ffi::PyObject_GC_New::<ffi::PyObject>(ty.as_ptr().cast()) };
                if raw.is_null() {
                    return Err(PyErr::fetch(py));
                }
                (raw, false)
            }
        };
        if context_private {
            // safety: a context just made, that only we hold, tracked by
            // CPython when made; from here on nothing fails before the handle
            // owns it, and `make_context_public` tracks it again before it is
            // handed out or released. (Untracked before a failure above, it
            // was destroyed untracked: a crash, found in debug mode with a
            // KeyboardInterrupt raised while the creation stack was taken.)
            unsafe { ffi::PyObject_GC_UnTrack(context.0.as_ptr().cast()) };
        }
        // safety: `object` is a block of its type's size (`HandleObject`,
        // with a `TimerPart` tail for a timer) with the
        // collector's header in front, that nobody else uses (fresh, or taken
        // off the free list of its own type, untracked); PyObject_Init sets
        // its type (and takes a reference to it) and its reference count to
        // one (PyObject_GC_New did that already for a fresh object), then
        // the other fields are written (the state straight into place) before
        // anyone can see it. A timer is tracked only after that, so the
        // collector never traverses a half-made one; it was untracked (fresh,
        // or untracked by `handle_dealloc` before going on the free list), so
        // this is not the fatal second tracking.
        unsafe {
            if init {
                ffi::PyObject_Init(object, ty.as_ptr().cast());
            }
            let this = object.cast::<HandleObject>();
            ptr::addr_of_mut!((*this).weakreflist).write(ptr::null_mut());
            ptr::addr_of_mut!((*this).data).write(HandleData {
                call: GilSlot::new(Some(Call {
                    callback: Owned::new(callback),
                    args,
                })),
                context,
                source_traceback,
                context_private: Cell::new(context_private),
                cancelled: Cell::new(false),
                is_timer: timer.is_some(),
            });
            if let Some(timer) = timer {
                ptr::addr_of_mut!((*object.cast::<HandleObject<TimerPart>>()).tail).write(timer);
            }
            if tracked {
                ffi::PyObject_GC_Track(object.cast());
            }
            Ok(HandleRef(Bound::from_owned_ptr(py, object).unbind()))
        }
    }

    /// The handle `object` is, if it is one of ours.
    pub(crate) fn from_object(object: &Bound<'_, PyAny>) -> Option<HandleRef> {
        let types = TYPES.get(object.py())?;
        let ty = object.get_type();
        (ty.is(&types.handle) || ty.is(&types.timer)).then(|| HandleRef(object.clone().unbind()))
    }

    fn data(&self) -> &HandleData {
        // safety: a `HandleRef` only ever holds an object of one of our two
        // types (made by `new` or checked by `from_object`), whose layout is
        // `HandleObject` and whose `data` stays initialised until deallocation,
        // which cannot happen while we hold a reference.
        unsafe { &(*self.0.as_ptr().cast::<HandleObject>()).data }
    }

    /// The handle as a Python object.
    pub(crate) fn as_any(&self) -> &Py<PyAny> {
        &self.0
    }

    /// A new reference to the same handle.
    pub(crate) fn clone_ref(&self, py: Python<'_>) -> HandleRef {
        HandleRef(self.0.clone_ref(py))
    }

    /// The reference, handed to the caller of a C API function.
    pub(crate) fn into_ptr(self) -> *mut ffi::PyObject {
        self.0.into_ptr()
    }

    /// For a timer handle: its deadline, and whether it is still in the heap.
    pub(crate) fn timer_state(&self) -> Option<(f64, bool)> {
        self.timer().map(|t| (t.when, t.scheduled.get()))
    }

    /// The timer part, for a `TimerHandle`.
    fn timer(&self) -> Option<&TimerPart> {
        // safety: a `HandleRef` holds a live handle of our types (see `data`).
        unsafe { timer_of(self.0.as_ptr(), self.data()) }
    }

    /// For a timer handle: marks it as out of the loop's heap.
    pub(crate) fn set_unscheduled(&self) {
        if let Some(timer) = self.timer() {
            timer.scheduled.set(false);
        }
    }

    /// Drops the call once it has run (or the loop closed), so that the
    /// handle no longer keeps the callback and its arguments alive.
    pub(crate) fn release(&self, py: Python<'_>) {
        if let Some(call) = self.data().call.take(py) {
            call.release();
        }
        self.publish_if_shared();
    }

    /// Publishes the handle (see `publish`) if someone besides the loop
    /// holds it.
    #[inline(always)]
    fn publish_if_shared(&self) {
        if self.refcount() > 1 {
            publish(self.0.as_ptr(), self.data());
        }
    }

    /// Reports to the collector what the handle holds. The loop calls this for
    /// a pending untracked handle that only it holds (see the module
    /// documentation); never for a tracked one, which reports it itself.
    pub(crate) fn visit_contents(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit_data(self.data(), &mut LoopVisitor(visit))
    }

    /// True for a handle the collector tracks (a `TimerHandle`, or a
    /// `Handle` once published): a holder reports the handle itself, never
    /// what it holds.
    pub(crate) fn is_tracked(&self) -> bool {
        // safety: reads the collector's header of an object we hold a
        // reference to, of a GC type.
        unsafe { ffi::PyObject_GC_IsTracked(self.0.as_ptr()) != 0 }
    }

    /// The reference count of the handle object.
    pub(crate) fn refcount(&self) -> isize {
        // safety: reads the count of an object we hold a reference to.
        unsafe { ffi::Py_REFCNT(self.0.as_ptr()) }
    }

    // ANCHOR: run
    /// Runs the callback in its context and lets go of it. An exception goes
    /// to the loop's exception handler, as in asyncio; only `KeyboardInterrupt`
    /// and `SystemExit` (and a failure of the handler itself) come back as
    /// `Err`, to end `run_forever`.
    ///
    /// The call is taken out of the handle before it runs (what asyncio does
    /// after it), saving a new reference to the callback and each argument; it
    /// is put back while the exception handler looks at the handle, so that
    /// the handle's repr still names the callback there, as in asyncio. With
    /// `keep_call` (debug mode) the call stays until [`release`](Self::release),
    /// for the slow-callback warning made after the run.
    #[inline(always)]
    pub(crate) fn run(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        keep_call: bool,
    ) -> PyResult<()> {
        let data = self.data();
        if data.cancelled.get() {
            return Ok(());
        }
        let call = if keep_call {
            data.call.peek(py, |c| Call {
                callback: Owned::new(&c.callback.bind(py)),
                args: clone_args(py, &c.args),
            })
        } else {
            data.call.take(py)
        };
        let Some(call) = call else {
            return Ok(());
        };
        let ctx = data.context.as_ptr();
        // safety: attached; `ctx` is a Context (checked or made in `new`) and
        // the call's references are owned by `call`, alive for the whole block.
        // A failed enter leaves an error set, which `PyErr::fetch` takes; exit
        // follows a successful enter only, after the call's result (or error)
        // has been taken.
        let result = unsafe {
            if ffi::PyContext_Enter(ctx) < 0 {
                Err(PyErr::fetch(py))
            } else {
                let out =
                    Bound::from_owned_ptr_or_err(py, invoke(&call.callback.bind(py), &call.args));
                ffi::PyContext_Exit(ctx);
                out
            }
        };
        match result {
            Ok(returned) => {
                release_bound(returned);
                call.release();
                self.publish_if_shared();
                Ok(())
            }
            Err(err) => self.failed(py, event_loop, call, keep_call, err),
        }
    }
    // ANCHOR_END: run

    /// After the callback `call` raised `err`: the call goes back into the
    /// handle (unless kept or cancelled meanwhile) while the loop's exception
    /// handler looks at it, then is let go of.
    #[cold]
    #[inline(never)]
    fn failed(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        call: Call,
        keep_call: bool,
        err: PyErr,
    ) -> PyResult<()> {
        let data = self.data();
        let callback = call.callback.bind(py);
        let args = clone_args(py, &call.args);
        if !keep_call && !data.cancelled.get() {
            // Anything the slot held is dropped after the borrow.
            let replaced = data.call.replace(py, call);
            drop(replaced);
        }
        let reported = self.report_error(py, event_loop, &callback, &args, err);
        self.release(py);
        // The copies made for the report may hold the last references now:
        // their destructors go through `release_last`, as after a call that
        // returned (the interpreter may end the thread in one at exit).
        release_args(args);
        release_bound(callback);
        reported
    }

    /// Hands an exception raised by the callback to the loop's exception
    /// handler, with asyncio's message and keys; passes `KeyboardInterrupt`
    /// and `SystemExit` through.
    fn report_error(
        &self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
        args: &Args,
        err: PyErr,
    ) -> PyResult<()> {
        if boundary::is_fatal_to_loop(py, &err) {
            return Err(err);
        }
        let source = format_callback(py, callback, &args_tuple(py, args)?)?;
        let message = format!("Exception in callback {source}");
        boundary::report_to_handler(event_loop, &message, &err, |context| {
            context.set_item(intern!(py, "handle"), self.0.bind(py))?;
            if let Some(stack) = &self.data().source_traceback {
                context.set_item(intern!(py, "source_traceback"), stack.bind(py))?;
            }
            Ok(())
        })
    }
}

fn clone_args(py: Python<'_>, args: &Args) -> Args {
    match args {
        Args::Zero => Args::Zero,
        Args::One(a) => Args::One(Owned::new(&a.bind(py))),
        Args::Two(a, b) => Args::Two(Owned::new(&a.bind(py)), Owned::new(&b.bind(py))),
        Args::Many(t) => Args::Many(Owned::new(&t.bind(py))),
    }
}

/// The arguments as a tuple (for reprs and asyncio's `_args`).
fn args_tuple<'py>(py: Python<'py>, args: &Args) -> PyResult<Bound<'py, PyTuple>> {
    match args {
        Args::Zero => Ok(PyTuple::empty(py)),
        Args::One(a) => PyTuple::new(py, [a.bind(py)]),
        Args::Two(a, b) => PyTuple::new(py, [a.bind(py), b.bind(py)]),
        // safety of the cast: `Many` always holds a tuple (made in `new`).
        Args::Many(t) => Ok(unsafe { t.bind(py).cast_into_unchecked() }),
    }
}

// ANCHOR: publish
/// Lets the collector see through the handle `object` (whose state is
/// `data`): its context goes back on the collector's list, and the handle
/// joins it. Done once the handle has let go of its call (it ran, or was
/// cancelled) while someone besides the loop holds it: what it holds then is
/// its context, for `get_context()`, and through a context variable that can
/// lead back to whoever holds the handle (`self.handle = loop.call_soon(...)`
/// in a request whose context variable is `self`), a cycle only the collector
/// can free. A handle only the loop holds is about to be freed; it is left
/// as it is.
fn publish(object: *mut ffi::PyObject, data: &HandleData) {
    data.make_context_public();
    // safety: attached (handles are only reached with the GIL held); `object`
    // is a live, fully made handle of one of our GC types. Tracked only if it
    // is not yet, as tracking twice corrupts the collector's list.
    unsafe {
        if ffi::PyObject_GC_IsTracked(object) == 0 {
            ffi::PyObject_GC_Track(object.cast());
        }
    }
}
// ANCHOR_END: publish

/// Marks the handle `object` (whose state is `data`) cancelled and drops its
/// call; true if it was not cancelled before. A timer still in its loop's
/// heap tells the loop.
///
/// # Safety
/// As [`timer_of`].
unsafe fn cancel_data(py: Python<'_>, object: *mut ffi::PyObject, data: &HandleData) -> bool {
    if data.cancelled.replace(true) {
        return false;
    }
    let call = data.call.take(py);
    // safety: the caller's contract.
    if let Some(timer) = unsafe { timer_of(object, data) } {
        if timer.scheduled.replace(false) {
            timer.cancelled_timers.fetch_add(1, Relaxed);
        }
    }
    drop(call);
    true
}

/// Calls `callback(*args)`: through vectorcall for inline arguments, leaving
/// the slot before them free for the callee (`PY_VECTORCALL_ARGUMENTS_OFFSET`:
/// a bound method puts its `self` there instead of copying the arguments).
/// A thread the interpreter ends meanwhile parks (`exit_park.rs`).
///
/// # Safety
/// Attached to the interpreter; returns a new reference or NULL with an error set.
#[inline(always)]
unsafe fn invoke(callback: &Bound<'_, PyAny>, args: &Args) -> *mut ffi::PyObject {
    const OFFSET: usize = ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    let cb = callback.as_ptr();
    // safety (each arm): `slots` lives on this stack frame for the call; the
    // callee may write `slots[0]` (the offset slot) and restores it; the
    // argument pointers are owned references held by `args` for the call.
    unsafe {
        match args {
            Args::Zero => exit_park::call_no_args(cb),
            Args::One(a) => {
                let mut slots = [ptr::null_mut(), a.as_ptr()];
                exit_park::vectorcall(cb, slots.as_mut_ptr().add(1), 1 | OFFSET)
            }
            Args::Two(a, b) => {
                let mut slots = [ptr::null_mut(), a.as_ptr(), b.as_ptr()];
                exit_park::vectorcall(cb, slots.as_mut_ptr().add(1), 2 | OFFSET)
            }
            Args::Many(t) => exit_park::call(cb, t.as_ptr(), ptr::null_mut()),
        }
    }
}

/// The collector's visitor, as a traverse sees it: each reference the handle
/// holds, and what a private context holds (see `visit_private_context`).
trait Visitor {
    /// Stops the traverse (the visitor's non-zero answer).
    type Stop;
    /// One reference the handle holds.
    fn object(&mut self, held: &Owned) -> Result<(), Self::Stop>;
    /// What the private context `context` refers to.
    fn private_context(&mut self, context: &Owned) -> Result<(), Self::Stop>;
}

/// The visitor of a `tp_traverse` slot: CPython's `visitproc` and its argument.
struct RawVisitor {
    visit: ffi::visitproc,
    arg: *mut c_void,
}

impl Visitor for RawVisitor {
    type Stop = c_int;

    fn object(&mut self, held: &Owned) -> Result<(), c_int> {
        // safety: a `visitproc` CPython gave a traverse, with its argument,
        // called on a live object we hold a reference to.
        match unsafe { (self.visit)(held.as_ptr(), self.arg) } {
            0 => Ok(()),
            stop => Err(stop),
        }
    }

    fn private_context(&mut self, context: &Owned) -> Result<(), c_int> {
        // The collector's own visitproc, passed on to the context's traverse.
        // safety: `context` is a live `contextvars.Context` we own, whose type
        // is CPython's, with a `tp_traverse`; called during a traverse, attached.
        match unsafe { traverse_context(context, self.visit, self.arg) } {
            0 => Ok(()),
            stop => Err(stop),
        }
    }
}

/// The visitor of the loop's `__traverse__`, through PyO3.
struct LoopVisitor<'v, 'py>(&'v PyVisit<'py>);

impl Visitor for LoopVisitor<'_, '_> {
    type Stop = PyTraverseError;

    fn object(&mut self, held: &Owned) -> Result<(), PyTraverseError> {
        self.0.call(held.as_py())
    }

    fn private_context(&mut self, context: &Owned) -> Result<(), PyTraverseError> {
        visit_private_context(context, &mut |held| self.0.call(held.as_py()))
    }
}

/// Calls `visitor` on every reference `data` holds: the pending call's callback
/// and arguments, the context (what it holds, for a private one) and the
/// source traceback. The call is skipped if it is out of its slot (taken by
/// the collecting thread itself, further up its stack): reporting fewer
/// references only keeps objects alive.
fn visit_data<V: Visitor>(data: &HandleData, visitor: &mut V) -> Result<(), V::Stop> {
    // safety: only reached from a traverse (the loop's `__traverse__` through
    // `visit_contents`, or `handle_traverse`), attached.
    unsafe {
        data.call.peek_in_raw_traverse(|call| {
            visitor.object(&call.callback)?;
            match &call.args {
                Args::Zero => Ok(()),
                Args::One(a) => visitor.object(a),
                Args::Two(a, b) => {
                    visitor.object(a)?;
                    visitor.object(b)
                }
                Args::Many(t) => visitor.object(t),
            }
        })
    }
    .unwrap_or(Ok(()))?;
    if data.context_private.get() {
        // Off the collector's list, so the collector would not look inside it:
        // what it holds is reported as the handle's own.
        visitor.private_context(&data.context)
    } else {
        visitor.object(&data.context)
    }?;
    match &data.source_traceback {
        Some(stack) => visitor.object(stack),
        None => Ok(()),
    }
}

/// Runs the `tp_traverse` of the context `context` with `visit` and `arg`
/// (CPython's context type is a GC type: it has one; without one there would
/// be nothing to report).
///
/// # Safety
/// `context` must be a live `contextvars.Context`; called during a traverse,
/// attached, with a `visit` that may be called with `arg`.
unsafe fn traverse_context(context: &Owned, visit: ffi::visitproc, arg: *mut c_void) -> c_int {
    // safety: the caller's contract.
    unsafe {
        match (*ffi::Py_TYPE(context.as_ptr())).tp_traverse {
            Some(traverse) => traverse(context.as_ptr(), visit, arg),
            None => 0,
        }
    }
}

// ANCHOR: visit_private_context
/// Reports to `visit` what the private context `context` refers to (its
/// variables, and the context it was entered over while its callback runs),
/// through the context type's own `tp_traverse`. The collector ignores an
/// untracked object: visiting the context itself would not count what it
/// holds, and a context variable leading back to the loop (a request object
/// that knows its loop, in the context of a pending timer) would keep an
/// unclosed loop alive for good. A private context is held by its handle
/// alone and never traversed by the collector itself, so each of these
/// references is reported exactly once, by the one handle that owns it.
/// (A handle's own `tp_traverse` passes the collector's `visitproc` straight
/// to the context's; this is the loop's path, through PyO3's visitor.)
fn visit_private_context<E>(
    context: &Owned,
    visit: &mut dyn FnMut(&Owned) -> Result<(), E>,
) -> Result<(), E> {
    struct Visiting<'v, E> {
        visit: &'v mut dyn FnMut(&Owned) -> Result<(), E>,
        stopped: Option<E>,
    }

    /// The `visitproc` handed to the context's `tp_traverse`.
    unsafe extern "C" fn each<E>(object: *mut ffi::PyObject, arg: *mut c_void) -> c_int {
        // safety: `arg` is the `Visiting` below, alive and not otherwise
        // borrowed for the call of `tp_traverse` that calls us.
        let visiting = unsafe { &mut *arg.cast::<Visiting<'_, E>>() };
        let Some(object) = NonNull::new(object) else {
            return 0;
        };
        // Borrowed for the visit, never released: no count changes.
        let held = std::mem::ManuallyDrop::new(Owned(object));
        match (visiting.visit)(&held) {
            Ok(()) => 0,
            Err(stop) => {
                visiting.stopped = Some(stop);
                1
            }
        }
    }

    let mut visiting = Visiting {
        visit,
        stopped: None,
    };
    // safety: `context` is a live `contextvars.Context` we own; its traverse
    // is CPython's, called attached (we are in a traverse) with a visitproc
    // that only passes each object on.
    unsafe {
        traverse_context(context, each::<E>, ptr::addr_of_mut!(visiting).cast());
    }
    match visiting.stopped {
        Some(stop) => Err(stop),
        None => Ok(()),
    }
}
// ANCHOR_END: visit_private_context

fn format_callback<'py>(
    py: Python<'py>,
    callback: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<String> {
    static FORMAT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let format = FORMAT.import(py, "asyncio.format_helpers", "_format_callback_source")?;
    exit_park::call_with(format, &PyTuple::new(py, [callback, args.as_any()])?, None)?.extract()
}

/// The stack of the Python code calling into the loop now, as asyncio's
/// `format_helpers.extract_stack` gives it (most recent call last).
fn caller_stack(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static EXTRACT_STACK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static GETFRAME: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static STACK_SUMMARY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    // safety: attached; returns a borrowed frame, or null where no Python
    // code is running (a thread started in C calling us directly).
    if unsafe { ffi::PyEval_GetFrame() }.is_null() {
        return STACK_SUMMARY
            .import(py, "traceback", "StackSummary")?
            .call_method1(intern!(py, "from_list"), (PyList::empty(py),));
    }
    // Frame 0 is the caller's: a native method has no frame of its own.
    let frame = GETFRAME.import(py, "sys", "_getframe")?.call1((0,))?;
    EXTRACT_STACK
        .import(py, "asyncio.format_helpers", "extract_stack")?
        .call1((frame,))
}

// --- the type objects --------------------------------------------------------

fn handle_types(py: Python<'_>) -> PyResult<&HandleTypes> {
    TYPES.get_or_try_init(py, || make_types(py))
}

/// `Handle` and `TimerHandle`, for the module to export.
pub(crate) fn types(py: Python<'_>) -> PyResult<(Bound<'_, PyType>, Bound<'_, PyType>)> {
    let types = handle_types(py)?;
    Ok((types.handle.bind(py).clone(), types.timer.bind(py).clone()))
}

/// The handle behind `slf`, a `self` CPython passes to one of our slots or
/// methods (so an object of one of our two types, alive for the call).
///
/// # Safety
/// `slf` must be a live object of type `Handle` or `TimerHandle`.
unsafe fn data_of<'a>(slf: *mut ffi::PyObject) -> &'a HandleData {
    // safety: the caller's contract.
    unsafe { &(*slf.cast::<HandleObject>()).data }
}

// ANCHOR: dealloc_nesting
/// How deep handle deallocations are nested, and the handles whose
/// deallocation was put off for it. A handle holding the last reference to
/// another handle (as an argument, say) frees it from inside its own
/// deallocation; a chain of a hundred thousand would nest as deep and
/// overflow the C stack. CPython guards its own containers the same way (its
/// "trashcan"), but only for objects the collector tracks, which a `Handle`
/// is not.
struct DeallocNesting {
    /// Deallocations under way, on any thread (the GIL can change hands
    /// inside one, when a destructor it runs lets go of it).
    depth: std::cell::UnsafeCell<u32>,
    /// Handles whose count reached zero past [`MAX_NESTED_DEALLOCS`]: no
    /// reference to them is left, and they are freed when the depth is back
    /// to its last level.
    deferred: std::cell::UnsafeCell<Vec<NonNull<ffi::PyObject>>>,
}

// safety: touched only in `handle_dealloc`, with the GIL held (free-threaded
// builds are refused in gil_cell.rs), so never by two threads at once.
unsafe impl Sync for DeallocNesting {}

/// Deallocations nested deeper than this are put off (CPython's trashcan
/// allows 50).
const MAX_NESTED_DEALLOCS: u32 = 50;

static NESTING: DeallocNesting = DeallocNesting {
    depth: std::cell::UnsafeCell::new(0),
    deferred: std::cell::UnsafeCell::new(Vec::new()),
};

unsafe extern "C" fn handle_dealloc(object: *mut ffi::PyObject) {
    // safety: CPython calls tp_dealloc attached, once, on an object of our
    // type whose reference count reached zero. `NESTING` is touched with the
    // GIL held, and no reference into it is held across `free_handle_now`
    // (which can run Python code, even let the GIL go).
    unsafe {
        boundary::enter_void(|py| {
            if (*object.cast::<HandleObject>()).data.call.is_empty(py) {
                // Run or cancelled: the callback and its arguments are gone,
                // and what is left (a context) is never a handle. The common
                // case, at no cost.
                free_handle_now(py, object);
                return;
            }
            let depth = NESTING.depth.get();
            if *depth >= MAX_NESTED_DEALLOCS {
                // Off the collector's list before it waits (a timer is on it).
                ffi::PyObject_GC_UnTrack(object.cast());
                let deferred = &mut *NESTING.deferred.get();
                if deferred.try_reserve(1).is_ok() {
                    deferred.push(NonNull::new_unchecked(object));
                    return;
                }
                // No memory to put it off: free it now, deep as it is.
            }
            *depth += 1;
            free_handle_now(py, object);
            if *depth == 1 {
                // The last deallocation under way frees what was put off; one
                // it frees may put off more, which this loop then takes too.
                while let Some(next) = (*NESTING.deferred.get()).pop() {
                    free_handle_now(py, next.as_ptr());
                }
            }
            *depth -= 1;
        })
    }
}
// ANCHOR_END: dealloc_nesting

/// The body of `tp_dealloc`, for `handle_dealloc` to run now or later.
///
/// # Safety
/// Attached; `object` is a handle of ours whose reference count is zero and
/// that nothing will reach again.
#[inline(always)]
unsafe fn free_handle_now(py: Python<'_>, object: *mut ffi::PyObject) {
    // safety: the caller's contract.
    unsafe {
        let ty = ffi::Py_TYPE(object);
        // A tracked handle leaves the collector's list first, before
        // anything below can run Python code and start a collection that
        // would traverse a half-destroyed object (untracking an untracked
        // object does nothing).
        ffi::PyObject_GC_UnTrack(object.cast());
        let this = object.cast::<HandleObject>();
        if !(*this).weakreflist.is_null() {
            ffi::PyObject_ClearWeakRefs(object);
        }
        // The state is dropped in place, while the memory is still this
        // object's alone (no reference to it is left, and it is not yet on
        // the free list): dropping may run any Python code (a destructor),
        // which may make and free handles meanwhile.
        let is_timer = (*this).data.is_timer;
        ptr::drop_in_place(ptr::addr_of_mut!((*this).data));
        if is_timer {
            ptr::drop_in_place(ptr::addr_of_mut!(
                (*object.cast::<HandleObject<TimerPart>>()).tail
            ));
        }
        let (kept, uncounted) = match TYPES.get(py) {
            Some(t) if ty == t.handle.as_ptr().cast() => {
                (FREE.push(py, NonNull::new_unchecked(object)), t.uncounted)
            }
            Some(t) if ty == t.timer.as_ptr().cast() => {
                (FREE_TIMERS.push(py, NonNull::new_unchecked(object)), false)
            }
            _ => (false, false),
        };
        if !kept {
            free_handle_block(object, uncounted);
        }
        // Every instance of a heap type holds a reference to its type.
        ffi::Py_DECREF(ty.cast());
    }
}

/// `tp_richcompare` of `TimerHandle`, asyncio's: against another timer
/// handle, `<`, `<=`, `>` and `>=` compare deadlines, and `==` holds when the
/// deadline, callback, arguments and cancelled state are all equal (for a
/// handle that has run, and let go of its call, only itself); against
/// anything else, `NotImplemented`. Through the attributes asyncio compares
/// (rare, so not worth a path of its own).
unsafe extern "C" fn timer_richcompare(
    a: *mut ffi::PyObject,
    b: *mut ffi::PyObject,
    op: c_int,
) -> *mut ffi::PyObject {
    // safety: CPython calls tp_richcompare attached, with two live objects,
    // `a` of our type.
    unsafe {
        boundary::enter(|py| {
            let (a, b) = (Borrowed::from_ptr(py, a), Borrowed::from_ptr(py, b));
            let timer_type = handle_types(py)?.timer.bind(py);
            if !b.is_instance(timer_type)? {
                return Ok(py.NotImplemented().into_ptr());
            }
            let when = intern!(py, "_when");
            let (wa, wb) = (a.getattr(when)?, b.getattr(when)?);
            let order = match op {
                ffi::Py_LT => Some(CompareOp::Lt),
                ffi::Py_LE => Some(CompareOp::Le),
                ffi::Py_GT => Some(CompareOp::Gt),
                ffi::Py_GE => Some(CompareOp::Ge),
                _ => None,
            };
            if let Some(order) = order {
                return Ok(wa.rich_compare(&wb, order)?.into_ptr());
            }
            // A handle lets go of its call once it has run (asyncio's keeps it):
            // two that ran are equal only if they are one.
            // Only an object of the type itself has a handle's memory: `b` may be
            // anything whose `__class__` claims the type.
            let ran = |object: &Borrowed<'_, '_, PyAny>| {
                object.get_type().is(timer_type) && {
                    let data = data_of(object.as_ptr());
                    !data.cancelled.get() && data.call.peek(py, |_| ()).is_none()
                }
            };
            let mut equal = if ran(&a) || ran(&b) {
                a.is(b)
            } else {
                wa.eq(&wb)?
            };
            for name in [
                intern!(py, "_callback"),
                intern!(py, "_args"),
                intern!(py, "_cancelled"),
            ] {
                if !equal {
                    break;
                }
                equal = a.getattr(name)?.eq(b.getattr(name)?)?;
            }
            let result = match op {
                ffi::Py_EQ => equal,
                ffi::Py_NE => !equal,
                _ => return Ok(py.NotImplemented().into_ptr()),
            };
            Ok(PyBool::new(py, result).to_owned().into_ptr())
        })
    }
}

/// `tp_hash` of `TimerHandle`: the hash of its deadline, as asyncio's (equal
/// timers have equal deadlines).
unsafe extern "C" fn timer_hash(object: *mut ffi::PyObject) -> ffi::Py_hash_t {
    // safety: CPython calls tp_hash attached, on a live object of our type.
    let hashed = unsafe {
        boundary::enter(|py| {
            let when = Borrowed::from_ptr(py, object).getattr(intern!(py, "_when"))?;
            Ok(when.hash()?.into_pyobject(py)?.into_ptr())
        })
    };
    if hashed.is_null() {
        return -1;
    }
    // safety: attached (CPython called us so); `hashed` is a new reference to
    // an int we made, let go of after reading it.
    unsafe {
        let value = ffi::PyLong_AsSsize_t(hashed);
        ffi::Py_DECREF(hashed);
        value
    }
}

/// `tp_traverse` of both types: what the handle holds (see the module
/// documentation), every one a reference the handle owns.
unsafe extern "C" fn handle_traverse(
    object: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // safety: CPython calls tp_traverse attached, on a live object of our
    // type; `visit` and `arg` are its pair, valid for the call, and each
    // pointer given to `visit` is a live object the handle holds a reference to.
    // No panic can unwind from here: `visit_data` and the visitor do not panic.
    unsafe {
        let data = data_of(object);
        visit_data(data, &mut RawVisitor { visit, arg })
            .err()
            .unwrap_or(0)
    }
}

/// `tp_clear` of both types, for a handle in a cycle the collector found to
/// be garbage: lets go of the callback and its arguments (as running or
/// cancelling it would), which breaks any cycle through them. A cycle through
/// the context is the context's to break (its own `tp_clear`).
unsafe extern "C" fn handle_clear(object: *mut ffi::PyObject) -> c_int {
    // safety: CPython calls tp_clear attached, on a live object of our type.
    unsafe {
        boundary::enter_void(|py| {
            let data = data_of(object);
            // Taken out, then dropped once the slot is empty again (the drop
            // may run any Python code).
            let call = data.call.take(py);
            drop(call);
        });
    }
    0
}

unsafe extern "C" fn handle_repr(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // safety: CPython calls tp_repr attached, on an object of our type.
    unsafe {
        boundary::enter(|py| {
            let data = data_of(slf);
            let (kind, extra) = match timer_of(slf, data) {
                Some(timer) => ("TimerHandle", format!(" when={}", timer.when)),
                None => ("Handle", String::new()),
            };
            let text = if data.cancelled.get() {
                format!("<{kind}{extra} cancelled>")
            } else {
                let source = data
                    .call
                    .peek(py, |c| (c.callback.bind(py), clone_args(py, &c.args)));
                match source {
                    Some((callback, args)) => format!(
                        "<{kind}{extra} {}>",
                        format_callback(py, &callback, &args_tuple(py, &args)?)?
                    ),
                    None => format!("<{kind}{extra} done>"),
                }
            };
            Ok(pyo3::types::PyString::new(py, &text).into_ptr())
        })
    }
}

/// `handle.cancel()`: the callback will not run; cancelling twice does nothing.
unsafe extern "C" fn handle_cancel(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: a method of our types, called attached with `slf` of our type.
    unsafe {
        boundary::enter(|py| {
            let data = data_of(slf);
            cancel_data(py, slf, data);
            publish(slf, data);
            Ok(py.None().into_ptr())
        })
    }
}

/// `handle.cancelled()`.
unsafe extern "C" fn handle_cancelled(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: as in `handle_cancel`.
    unsafe {
        boundary::enter(|py| {
            Ok(pyo3::types::PyBool::new(py, data_of(slf).cancelled.get())
                .to_owned()
                .into_ptr())
        })
    }
}

/// `handle.get_context()`: the `contextvars.Context` the callback runs in.
unsafe extern "C" fn handle_get_context(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: as in `handle_cancel`.
    unsafe {
        boundary::enter(|py| {
            let data = data_of(slf);
            data.make_context_public();
            Ok(data.context.bind(py).into_ptr())
        })
    }
}

/// `timer_handle.when()`: the time, on the loop's clock, it is scheduled for.
unsafe extern "C" fn timer_when(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // safety: a method of `TimerHandle`, whose objects all have a timer part.
    unsafe {
        boundary::enter(|py| {
            let when = timer_of(slf, data_of(slf)).map_or(f64::NAN, |t| t.when);
            Ok(pyo3::types::PyFloat::new(py, when).into_ptr())
        })
    }
}

/// The getters: `_callback`, `_args`, `_source_traceback`, `_cancelled`,
/// `_when`, `_scheduled`, the attributes asyncio's own helpers read.
unsafe extern "C" fn handle_get(slf: *mut ffi::PyObject, which: *mut c_void) -> *mut ffi::PyObject {
    // safety: a getter of our types, called attached with `slf` of our type;
    // `which` is the closure we registered (a static string's address).
    unsafe {
        boundary::enter(|py| {
            let data = data_of(slf);
            let which = CStr::from_ptr(which.cast());
            let value: Bound<'_, PyAny> = match which.to_bytes() {
                b"_callback" => match data.call.peek(py, |c| c.callback.bind(py)) {
                    Some(cb) => cb,
                    None => py.None().into_bound(py),
                },
                b"_args" => match data.call.peek(py, |c| clone_args(py, &c.args)) {
                    Some(args) => args_tuple(py, &args)?.into_any(),
                    None => py.None().into_bound(py),
                },
                b"_source_traceback" => match &data.source_traceback {
                    Some(stack) => stack.bind(py),
                    None => py.None().into_bound(py),
                },
                b"_cancelled" => pyo3::types::PyBool::new(py, data.cancelled.get())
                    .to_owned()
                    .into_any(),
                b"_when" => {
                    pyo3::types::PyFloat::new(py, timer_of(slf, data).map_or(f64::NAN, |t| t.when))
                        .into_any()
                }
                b"_scheduled" => pyo3::types::PyBool::new(
                    py,
                    timer_of(slf, data).is_some_and(|t| t.scheduled.get()),
                )
                .to_owned()
                .into_any(),
                _ => py.None().into_bound(py),
            };
            Ok(value.into_ptr())
        })
    }
}

/// A `'static`, never-written table CPython keeps a pointer to.
struct Table<T>(std::cell::UnsafeCell<T>);

// safety: written only while building the types (once, attached, before any
// other use) and read by CPython afterwards; never written concurrently.
unsafe impl<T> Sync for Table<T> {}

impl<T> Table<T> {
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

macro_rules! method {
    ($name:literal, $func:ident, $doc:literal) => {
        ffi::PyMethodDef {
            ml_name: $name.as_ptr(),
            ml_meth: ffi::PyMethodDefPointer { PyCFunction: $func },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: $doc.as_ptr(),
        }
    };
}

macro_rules! getter {
    ($name:literal, $doc:literal) => {
        ffi::PyGetSetDef {
            name: $name.as_ptr(),
            get: Some(handle_get),
            set: None,
            doc: $doc.as_ptr(),
            closure: $name.as_ptr() as *mut c_void,
        }
    };
}

static HANDLE_METHODS: Table<[ffi::PyMethodDef; 4]> = Table(std::cell::UnsafeCell::new([
    method!(
        c"cancel",
        handle_cancel,
        c"Cancel the callback: it will not run."
    ),
    method!(
        c"cancelled",
        handle_cancelled,
        c"True if the callback was cancelled."
    ),
    method!(
        c"get_context",
        handle_get_context,
        c"The contextvars.Context the callback runs in."
    ),
    ffi::PyMethodDef::zeroed(),
]));

static TIMER_METHODS: Table<[ffi::PyMethodDef; 2]> = Table(std::cell::UnsafeCell::new([
    method!(
        c"when",
        timer_when,
        c"The time, on the loop's clock, the callback is scheduled for."
    ),
    ffi::PyMethodDef::zeroed(),
]));

static HANDLE_GETSET: Table<[ffi::PyGetSetDef; 5]> = Table(std::cell::UnsafeCell::new([
    getter!(
        c"_callback",
        c"The callback, until it has run or been cancelled."
    ),
    getter!(
        c"_args",
        c"The callback's arguments, until it has run or been cancelled."
    ),
    getter!(
        c"_source_traceback",
        c"In debug mode, where the handle was made."
    ),
    getter!(c"_cancelled", c"True once cancelled."),
    ffi::PyGetSetDef {
        name: ptr::null(),
        get: None,
        set: None,
        doc: ptr::null(),
        closure: ptr::null_mut(),
    },
]));

static TIMER_GETSET: Table<[ffi::PyGetSetDef; 3]> = Table(std::cell::UnsafeCell::new([
    getter!(c"_when", c"The time the callback is scheduled for."),
    getter!(
        c"_scheduled",
        c"True while the handle is in its loop's timer heap."
    ),
    ffi::PyGetSetDef {
        name: ptr::null(),
        get: None,
        set: None,
        doc: ptr::null(),
        closure: ptr::null_mut(),
    },
]));

static MEMBERS: Table<[ffi::PyMemberDef; 2]> = Table(std::cell::UnsafeCell::new([
    ffi::PyMemberDef {
        name: c"__weaklistoffset__".as_ptr(),
        type_code: ffi::Py_T_PYSSIZET,
        offset: std::mem::offset_of!(HandleObject, weakreflist) as ffi::Py_ssize_t,
        flags: ffi::Py_READONLY,
        doc: ptr::null(),
    },
    ffi::PyMemberDef {
        name: ptr::null(),
        type_code: 0,
        offset: 0,
        flags: 0,
        doc: ptr::null(),
    },
]));

fn slot(slot: c_int, pfunc: *mut c_void) -> ffi::PyType_Slot {
    ffi::PyType_Slot { slot, pfunc }
}

fn make_types(py: Python<'_>) -> PyResult<HandleTypes> {
    let size = std::mem::size_of::<HandleObject>() as c_int;
    let timer_size = std::mem::size_of::<HandleObject<TimerPart>>() as c_int;
    // ANCHOR: flags
    // Both are GC types, but a pending `Handle` is not on the collector's
    // list: the collector never walks one (the loop's traverse reports what a
    // pending handle holds when it holds it alone), and making one does not
    // count towards a collection (`allocate_uncounted`, or the free list). It
    // joins the list only when published (`publish`). A `TimerHandle` is on
    // it from the start (see the module documentation).
    // Immutable, so that `handle.__class__ = ...` cannot turn a `Handle` into
    // a `TimerHandle` (whose memory is larger), as asyncio refuses.
    let flags = (ffi::Py_TPFLAGS_DEFAULT
        | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION
        | ffi::Py_TPFLAGS_HAVE_GC
        | ffi::Py_TPFLAGS_IMMUTABLETYPE) as std::ffi::c_uint;
    // ANCHOR_END: flags
    let mut handle_slots = [
        slot(ffi::Py_tp_dealloc, handle_dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, handle_traverse as *mut c_void),
        slot(ffi::Py_tp_clear, handle_clear as *mut c_void),
        slot(ffi::Py_tp_repr, handle_repr as *mut c_void),
        slot(ffi::Py_tp_methods, HANDLE_METHODS.get().cast()),
        slot(ffi::Py_tp_getset, HANDLE_GETSET.get().cast()),
        slot(ffi::Py_tp_members, MEMBERS.get().cast()),
        slot(
            ffi::Py_tp_doc,
            c"A callback scheduled by call_soon or call_soon_threadsafe; cancel() stops it."
                .as_ptr() as *mut c_void,
        ),
        slot(0, ptr::null_mut()),
    ];
    let mut handle_spec = ffi::PyType_Spec {
        name: c"pyloop._native.Handle".as_ptr(),
        basicsize: size,
        itemsize: 0,
        flags: flags | ffi::Py_TPFLAGS_BASETYPE as std::ffi::c_uint,
        slots: handle_slots.as_mut_ptr(),
    };
    // safety: attached; the spec and its slots are valid for the call (CPython
    // copies what it keeps, except the method/getset/member tables, which are
    // statics); a new type object or NULL with an error set.
    let handle: Bound<'_, PyType> = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(&mut handle_spec))?
            .cast_into_unchecked()
    };
    let mut timer_slots = [
        slot(ffi::Py_tp_dealloc, handle_dealloc as *mut c_void),
        slot(ffi::Py_tp_traverse, handle_traverse as *mut c_void),
        slot(ffi::Py_tp_clear, handle_clear as *mut c_void),
        slot(ffi::Py_tp_richcompare, timer_richcompare as *mut c_void),
        slot(ffi::Py_tp_hash, timer_hash as *mut c_void),
        slot(ffi::Py_tp_repr, handle_repr as *mut c_void),
        slot(ffi::Py_tp_methods, TIMER_METHODS.get().cast()),
        slot(ffi::Py_tp_getset, TIMER_GETSET.get().cast()),
        slot(
            ffi::Py_tp_doc,
            c"A callback scheduled for a time by call_at or call_later.".as_ptr() as *mut c_void,
        ),
        slot(0, ptr::null_mut()),
    ];
    let mut timer_spec = ffi::PyType_Spec {
        name: c"pyloop._native.TimerHandle".as_ptr(),
        basicsize: timer_size,
        itemsize: 0,
        flags,
        slots: timer_slots.as_mut_ptr(),
    };
    let bases = PyTuple::new(py, [&handle])?;
    // safety: as above, with `bases` a tuple holding `handle`.
    let timer: Bound<'_, PyType> = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyType_FromSpecWithBases(&mut timer_spec, bases.as_ptr()),
        )?
        .cast_into_unchecked()
    };
    // The size of the collector's header, as `sys.getsizeof` adds it to a
    // list's own size: what `allocate_uncounted` relies on.
    let sys = py.import("sys")?;
    let list = pyo3::types::PyList::empty(py);
    let with_header: usize = sys.call_method1("getsizeof", (&list,))?.extract()?;
    let own: usize = list.call_method0("__sizeof__")?.extract()?;
    Ok(HandleTypes {
        handle: handle.unbind(),
        timer: timer.unbind(),
        uncounted: with_header.checked_sub(own) == Some(GC_HEADER),
    })
}
