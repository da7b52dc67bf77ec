//! Where stacks cannot be switched (see `fiber::SUPPORTED`): no fiber is
//! ever made, so these types have no values.

use super::{Outcome, Resume};

/// No fibers here.
#[derive(Debug)]
pub(crate) enum Fiber<R> {
    #[doc(hidden)]
    _Never(std::convert::Infallible, std::marker::PhantomData<R>),
}

impl<R: 'static> Fiber<R> {
    pub(crate) fn new(_: &StackPool, _: usize, _: impl FnOnce(Resume) -> R + 'static) -> Self {
        unreachable!("nestloop: internal error: no fibers here")
    }

    pub(crate) fn resume(&mut self, _: Resume) -> Outcome<R> {
        match *self {
            Fiber::_Never(never, _) => match never {},
        }
    }

    pub(crate) fn stack_limit(&self) -> usize {
        match *self {
            Fiber::_Never(never, _) => match never {},
        }
    }

    pub(crate) fn recycle(self, _: &StackPool) {}
}

/// No stacks here.
#[derive(Debug, Default)]
pub(crate) struct StackPool;
