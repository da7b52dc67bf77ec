fn main() {
    let ex = nestloop::Executor::new();
    let mut s = 0;
    for i in 0..200_000u64 {
        s += ex.block_on(std::future::ready(std::hint::black_box(i)));
    }
    println!("{s}");
}
