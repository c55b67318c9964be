// A Rust file, to show that any UTF-8 text is searched.
fn main() {
    let needle = "here";
    println!("{needle}");
}
