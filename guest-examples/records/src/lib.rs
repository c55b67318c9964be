//! `records`: a component that exports an interface of records, variants, enums, flags,
//! options, results, tuples, lists, chars, floats and every integer type, with no Warden SDK.
//! Warden calls each function with JSON arguments converted by its WIT types.

wit_bindgen::generate!({
    path: "wit",
    world: "records",
});

use exports::local::legacy::people as legacy;
use exports::local::records::people::{Color, Guest, Perms, Shape, User};

struct Records;

impl Guest for Records {
    fn make_user(name: String, age: u8, mut tags: Vec<String>, email: Option<String>) -> User {
        tags.sort();
        tags.dedup();
        User {
            name,
            age,
            tags,
            email,
        }
    }

    fn summarize(users: Vec<User>) -> (u32, Option<String>) {
        let mut oldest: Option<&User> = None;
        for u in &users {
            if oldest.is_none_or(|o| u.age > o.age) {
                oldest = Some(u);
            }
        }
        let count = u32::try_from(users.len()).unwrap_or(u32::MAX);
        (count, oldest.map(|u| u.name.clone()))
    }

    fn echo_bytes(mut data: Vec<u8>) -> Vec<u8> {
        data.reverse();
        data
    }

    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Rect((w, h)) => f64::from(w) * f64::from(h),
            Shape::Point => 0.0,
        }
    }

    fn scale(s: Shape, by: f32) -> Shape {
        match s {
            Shape::Circle(r) => Shape::Circle(r * f64::from(by)),
            Shape::Rect((w, h)) => Shape::Rect((w * by, h * by)),
            Shape::Point => Shape::Point,
        }
    }

    fn next_color(c: Color) -> Color {
        match c {
            Color::Red => Color::Green,
            Color::Green => Color::Blue,
            Color::Blue => Color::Red,
        }
    }

    fn invert(p: Perms) -> Perms {
        Perms::all() - p
    }

    fn checked_div(a: i32, b: i32) -> Result<i32, String> {
        a.checked_div(b)
            .ok_or_else(|| format!("cannot divide {a} by {b}"))
    }

    fn describe_char(c: char) -> (u32, bool, String) {
        (u32::from(c), c.is_alphabetic(), c.to_uppercase().collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn sum_ints(a: i8, b: u8, c: i16, d: u16, e: i32, f: u32, g: i64, h: u64) -> String {
        let sum = i128::from(a)
            + i128::from(b)
            + i128::from(c)
            + i128::from(d)
            + i128::from(e)
            + i128::from(f)
            + i128::from(g)
            + i128::from(h);
        sum.to_string()
    }

    fn parse_all(items: Vec<String>) -> Vec<Result<i64, String>> {
        items
            .into_iter()
            .map(|s| s.parse::<i64>().map_err(|e| format!("{s:?}: {e}")))
            .collect()
    }

    fn bump(x: Option<Option<u32>>) -> Option<Option<u32>> {
        x.map(|inner| inner.map(|n| n.saturating_add(1)))
    }

    fn ping() {}
}

impl legacy::Guest for Records {
    fn make_user(name: String) -> String {
        format!("hello, {name}")
    }

    fn version() -> u32 {
        1
    }
}

export!(Records);
