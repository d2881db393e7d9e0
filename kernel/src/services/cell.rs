//! The cell that holds the running system.
//!
//! Every kernel entry runs to completion on the one CPU with interrupts
//! off, and nothing the kernel runs with interrupts on (the idle loop's
//! wait, ring-0 interrupt handlers) touches the system, so two entries
//! never touch it at once. A spin lock that masks interrupts would only
//! re-check that on every system call, at the cost of a flags save, an
//! atomic exchange and a restore; this cell keeps the one property still
//! worth checking — no second `&mut` while one is alive — with a flag, and
//! panics (a kernel bug) instead of deadlocking if it ever fails.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

pub struct KernelCell<T> {
    busy: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access goes through `lock`, which hands out at most one guard at a
// time (checked by `busy`); the kernel runs on one CPU.
unsafe impl<T: Send> Sync for KernelCell<T> {}

impl<T> KernelCell<T> {
    pub const fn new(value: T) -> Self {
        KernelCell {
            busy: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The one mutable borrow of the value, until the guard drops.
    ///
    /// # Panics
    ///
    /// If a guard is alive already: the kernel re-entered itself.
    #[inline(always)]
    pub fn lock(&self) -> KernelGuard<'_, T> {
        if self.busy.swap(true, Ordering::Acquire) {
            panic!("kernel: the system is already borrowed (re-entered kernel)");
        }
        KernelGuard { cell: self }
    }
}

pub struct KernelGuard<'a, T> {
    cell: &'a KernelCell<T>,
}

impl<T> Deref for KernelGuard<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: this guard is the only one alive (see `lock`).
        unsafe { &*self.cell.value.get() }
    }
}

impl<T> DerefMut for KernelGuard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the only one alive (see `lock`), and it is
        // borrowed mutably.
        unsafe { &mut *self.cell.value.get() }
    }
}

impl<T> Drop for KernelGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.cell.busy.store(false, Ordering::Release);
    }
}
