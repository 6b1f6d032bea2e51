//! The one place that picks loom's instrumented primitives or the real ones,
//! for every protocol of this crate that the loom models check.

#[cfg(not(loom))]
pub(crate) use core::{
    hint::spin_loop as spin_hint,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, fence},
};
#[cfg(loom)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, fence},
    thread::yield_now as spin_hint,
};

/// `core`'s `UnsafeCell` behind loom's closure API, so one code path
/// serves both builds (and loom can check every access to a link).
#[cfg(not(loom))]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// `const fn` for the kernel's statics; loom's atomics cannot be built in a
/// const context, so under loom the same function is a plain `fn`.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])* $vis fn $($rest)*
    };
}
pub(crate) use const_unless_loom;
