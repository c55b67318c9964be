//! The fuzz targets over their committed corpus (`tests/fuzz/corpus/<target>/`): the
//! quick pass CI makes. Every input a campaign found interesting, and every crash it
//! found, is kept there, so each is a regression test from then on. The long campaign
//! is `tests/fuzz/run`.

#[path = "../fuzz/targets.rs"]
mod targets;

use crate::guests::root;

#[test]
fn every_target_passes_its_corpus() {
    // `wit_json` reads a component of guest-examples/.
    crate::guests::guests();
    for (name, target) in targets::TARGETS {
        let dir = root().join("tests/fuzz/corpus").join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(
            !inputs.is_empty(),
            "{name} has no corpus in {}",
            dir.display()
        );
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            let caught = std::panic::catch_unwind(|| target(&data));
            assert!(
                caught.is_ok(),
                "fuzz target {name} fails on {}",
                input.display()
            );
        }
    }
}
