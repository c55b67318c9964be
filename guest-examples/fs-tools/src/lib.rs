//! `fs-tools`: a component that exports plain world-level functions, the way components
//! written without any Warden SDK do. Warden calls each one as a tool; the host's grants,
//! not this code, decide which paths it reaches.

wit_bindgen::generate!({
    path: "wit",
    world: "fs-tools",
});

use std::fs;

struct FsTools;

/// The error as the caller sees it: the path, then what the OS said.
fn failed(path: &str, e: std::io::Error) -> String {
    format!("{path}: {e}")
}

impl Guest for FsTools {
    fn read_file(path: String) -> Result<String, String> {
        fs::read_to_string(&path).map_err(|e| failed(&path, e))
    }

    fn write_file(path: String, contents: String) -> Result<(), String> {
        fs::write(&path, contents).map_err(|e| failed(&path, e))
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&path).map_err(|e| failed(&path, e))? {
            let entry = entry.map_err(|e| failed(&path, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn file_size(path: String) -> Result<u64, String> {
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| failed(&path, e))
    }
}

export!(FsTools);
