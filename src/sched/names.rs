//! The names of an executor's named tasks ([`TaskNames`]), kept beside the
//! tasks so that an unnamed task spends nothing on a name.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::task::TaskId;

/// The names given to an executor's live tasks (`TaskBuilder::name`).
#[derive(Debug, Default)]
pub(crate) struct TaskNames {
    /// How many names are kept: 0 lets a finishing task skip the map.
    count: Cell<usize>,
    /// The names, by task.
    names: RefCell<HashMap<TaskId, Box<str>>>,
}

impl TaskNames {
    /// Names the task `id`.
    pub(crate) fn name(&self, id: TaskId, name: &str) {
        let mut names = self.names.borrow_mut();
        names.insert(id, name.into());
        self.count.set(names.len());
    }

    /// Whether any task has a name (else a finishing task has none to
    /// forget).
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.count.get() != 0
    }

    /// Forgets the name of task `id`, which finished.
    #[cold]
    pub(crate) fn forget(&self, id: TaskId) {
        let mut names = self.names.borrow_mut();
        let name = names.remove(&id);
        self.count.set(names.len());
        drop(names);
        drop(name);
    }

    /// The name of task `id`, if it has one.
    pub(crate) fn get(&self, id: TaskId) -> Option<String> {
        self.names.borrow().get(&id).map(|name| name.to_string())
    }
}
