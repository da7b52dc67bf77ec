//! Feature `macros`: `#[nestloop::main]` and `#[nestloop::test]`.
#![cfg(feature = "macros")]

use std::time::Duration;

#[nestloop::test]
async fn a_test_body_runs_on_nestloop() {
    // A task and a timer: only a loop that runs them lets this finish.
    let task = nestloop::spawn(async {
        nestloop::time::sleep(Duration::from_millis(5)).await;
        7
    });
    assert_eq!(task.await.unwrap(), 7);
    assert_eq!(nestloop::depth(), 1);
}

#[nestloop::test]
async fn a_test_can_return_a_result() -> Result<(), String> {
    let n: u32 = "12".parse().map_err(|e| format!("{e}"))?;
    assert_eq!(n, 12);
    Ok(())
}

#[nestloop::test]
#[should_panic(expected = "from the test body")]
async fn a_panicking_test_body_fails_the_test() {
    nestloop::time::sleep(Duration::from_millis(1)).await;
    panic!("from the test body");
}

mod main_attribute {
    // `main` here is an ordinary function the attribute rewrites.
    #[nestloop::main]
    pub async fn main() -> u32 {
        let early = 20;
        if early > 100 {
            return 0; // `return` leaves the body, as in the async fn
        }
        nestloop::block_on(async { early + 1 }) * 2
    }
}

#[test]
fn main_becomes_a_plain_fn_that_blocks_on_its_body() {
    let out: u32 = main_attribute::main();
    assert_eq!(out, 42);
    assert_eq!(nestloop::depth(), 0);
}
