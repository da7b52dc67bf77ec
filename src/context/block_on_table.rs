#![allow(unsafe_code)]
//! The table: the `block_on` futures active on this thread, reachable
//! by a nested loop further up the stack (rule R3) through lifetime-erased
//! pointers.
//!
//! It is the second half of the frame stack: `ThreadState::frames` holds
//! each loop's frame, with the `BlockOnState` of its future; this table holds
//! the futures themselves, which live on the stack of their `block_on`
//! calls. A frame names its future's slot by `BlockOnId`: its key in the
//! table (a slab) and a serial unique per registration, so a registration
//! removes its own slot whatever was registered or removed meanwhile (the
//! calls of suspended stacks, R12, end in any order).
//!
//! Invariant: a slot's pointer is valid while its registration lasts:
//! `register` removes it (its `Unregister` guard) before it returns or
//! unwinds, while the `block_on` future is still borrowed by that call; `busy` keeps a
//! `block_on` future from being polled (and borrowed) twice. The slots are private to
//! this file.

use std::cell::RefCell;
use std::mem;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use slab::Slab;

/// A `block_on` future, seen through its poll function.
pub(crate) trait PollBlockOn {
    /// Polls the future; `Ready` once it has finished (with a value or a
    /// panic, which the implementor keeps for its owner).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// Names a registered `block_on` future; stale ids are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockOnId {
    /// Key in the table.
    key: usize,
    /// Unique per registration.
    serial: u64,
}

impl BlockOnId {
    /// Names no `block_on` future: refused by `poll_registered`.
    pub(crate) const UNREGISTERED: BlockOnId = BlockOnId {
        key: usize::MAX,
        serial: u64::MAX,
    };
}

/// A lifetime-erased pointer to a `block_on` future, valid while its registration lasts.
struct BlockOnSlot {
    /// Erased pointer to the `block_on` future owned by a `block_on` below on the stack.
    ptr: NonNull<dyn PollBlockOn + 'static>,
    /// Unique per registration.
    serial: u64,
    /// Being polled now (it is on the stack): never polled reentrantly.
    busy: bool,
}

/// The `block_on` futures of this thread's loops, reachable
/// by any loop of the thread (R3); part of `ThreadState`.
#[derive(Default)]
pub(crate) struct BlockOnTable(RefCell<Slots>);

/// See `BlockOnTable`.
#[derive(Default)]
struct Slots {
    /// One slot per registered `block_on` future.
    slots: Slab<BlockOnSlot>,
    /// Tells registrations apart: a stale `BlockOnId` names an old serial.
    next_serial: u64,
}

impl std::fmt::Debug for BlockOnTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockOnTable").finish_non_exhaustive()
    }
}

impl BlockOnTable {
    /// Makes `root` pollable through [`BlockOnTable::poll_registered`] while `body`
    /// runs; the registration ends when `body` returns or unwinds.
    pub(crate) fn register<R>(
        &self,
        root: &mut dyn PollBlockOn,
        body: impl FnOnce(BlockOnId) -> R,
    ) -> R {
        let ptr: NonNull<dyn PollBlockOn + '_> = NonNull::from(root);
        // SAFETY: only the lifetime bound of the trait object changes. The
        // pointer is removed from the table by `Unregister` below before this
        // function returns or unwinds, i.e. while `root` is still mutably
        // borrowed by this call, so it is never used after `root`'s lifetime.
        let ptr: NonNull<dyn PollBlockOn + 'static> = unsafe { mem::transmute(ptr) };
        let id = {
            let mut table = self.0.borrow_mut();
            let serial = table.next_serial;
            table.next_serial += 1;
            let key = table.slots.insert(BlockOnSlot {
                ptr,
                serial,
                busy: false,
            });
            BlockOnId { key, serial }
        };

        /// Removes the registration on return or unwind.
        struct Unregister<'a>(&'a BlockOnTable, BlockOnId);
        impl Drop for Unregister<'_> {
            fn drop(&mut self) {
                let mut table = self.0.0.borrow_mut();
                let own = table.slots.get(self.1.key).map(|slot| slot.serial);
                debug_assert_eq!(
                    own,
                    Some(self.1.serial),
                    "nestloop: internal error: a block_on future's slot was taken"
                );
                if own == Some(self.1.serial) {
                    table.slots.remove(self.1.key);
                }
            }
        }
        let _unregister = Unregister(self, id);
        body(id)
    }

    /// Whether the `block_on` future is being polled right now (it is on the stack).
    pub(crate) fn is_busy(&self, id: BlockOnId) -> bool {
        self.0
            .borrow()
            .slots
            .get(id.key)
            .is_some_and(|slot| slot.serial == id.serial && slot.busy)
    }

    /// Polls a registered `block_on` future. `None` when the id is stale or
    /// the future is being polled further down the stack (rule R2: it is
    /// never polled reentrantly).
    pub(crate) fn poll_registered(&self, id: BlockOnId, cx: &mut Context<'_>) -> Option<Poll<()>> {
        let ptr = {
            let mut table = self.0.borrow_mut();
            let slot = table.slots.get_mut(id.key)?;
            if slot.serial != id.serial || slot.busy {
                return None;
            }
            slot.busy = true;
            slot.ptr
        };

        /// Clears `busy` when the poll returns or unwinds.
        struct Release<'a>(&'a BlockOnTable, BlockOnId);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Some(slot) = self.0.0.borrow_mut().slots.get_mut(self.1.key)
                    && slot.serial == self.1.serial
                {
                    slot.busy = false;
                }
            }
        }
        let _release = Release(self, id);
        // SAFETY: the slot is registered (its serial matches), so `register` for
        // it has not returned and the `block_on` future is alive; `busy` was false and is now
        // true, so no other `&mut` to it exists (the owner only reaches its `block_on` future
        // through this function); the table borrow was released above, so a
        // nested loop started by this poll can register and poll other `block_on` futures.
        let root = unsafe { &mut *ptr.as_ptr() };
        Some(root.poll(cx))
    }
}
