//! The calibration the pipeline runs with, swapped without a restart.
//!
//! The file on disk is the truth. [`ActiveCalibration::reload`] reads it, validates it, builds
//! the stitching table and swaps the result in atomically; readers hold an `Arc` to the version
//! they started with. The watcher polls the file's SHA-256 once a second, so a save from the
//! page, a `polyvision-calibrate restore` or a hand edit is picked up the same way. A file that
//! does not validate is refused and the running calibration stays (an operator sees why in the
//! log and in `/api/status`).

use polyvision_calibration::{CalibrationFile, StitchTable};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// One loaded version.
#[derive(Debug)]
pub struct Loaded {
    /// The calibration.
    pub file: CalibrationFile,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Stitching table, when the file describes a two-camera rig with a panorama.
    pub table: Option<Arc<StitchTable>>,
}

/// What the pipeline runs with now.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The loaded calibration; `None` until a valid file exists.
    pub loaded: Option<Arc<Loaded>>,
    /// Counts successful loads.
    pub generation: u64,
    /// The last refusal, if the newest file on disk could not be used.
    pub last_error: Option<String>,
}

/// The shared, swappable calibration.
#[derive(Debug)]
pub struct ActiveCalibration {
    path: PathBuf,
    band_px: u32,
    state: RwLock<Arc<Snapshot>>,
}

impl ActiveCalibration {
    /// Starts with whatever valid file is at `path` (none is fine: the rig is not calibrated yet).
    pub fn open(path: &Path, band_px: u32) -> Self {
        let active = ActiveCalibration {
            path: path.to_owned(),
            band_px,
            state: RwLock::new(Arc::new(Snapshot::default())),
        };
        active.reload();
        active
    }

    /// The file this follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        match self.state.read() {
            Ok(s) => s.clone(),
            // A writer panicked mid-swap; the Arc inside is still a complete snapshot.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, next: Snapshot) {
        let mut guard = match self.state.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(next);
    }

    /// Reloads when the file's contents changed; returns true when a new version went live.
    pub fn reload(&self) -> bool {
        let now = self.current();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                self.refuse(&now, format!("{}: {e}", self.path.display()));
                return false;
            }
        };
        let sha256 = hex(&Sha256::digest(&bytes));
        if now.loaded.as_ref().is_some_and(|l| l.sha256 == sha256) {
            return false;
        }
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| format!("{}: not UTF-8 text", self.path.display()))
            .and_then(|text| {
                CalibrationFile::from_json(text, &self.path).map_err(|e| e.to_string())
            });
        let file = match parsed {
            Ok(f) => f,
            Err(e) => {
                if now.last_error.as_deref() != Some(&e) {
                    tracing::error!(error = %e, "calibration file refused; keeping the running calibration");
                }
                self.refuse(&now, e);
                return false;
            }
        };
        let table = if file.panorama.is_some() && file.cameras.len() == 2 {
            match StitchTable::build(&file, self.band_px) {
                Ok(t) => Some(Arc::new(t)),
                Err(e) => {
                    let e = format!("{}: {e}", self.path.display());
                    tracing::error!(error = %e, "no stitching table; keeping the running calibration");
                    self.refuse(&now, e);
                    return false;
                }
            }
        } else {
            None
        };
        let generation = now.generation + 1;
        tracing::info!(
            generation,
            sha256 = &sha256[..12],
            cameras = file.cameras.len(),
            panorama = file.panorama.is_some(),
            "calibration loaded"
        );
        self.replace(Snapshot {
            loaded: Some(Arc::new(Loaded {
                file,
                sha256,
                table,
            })),
            generation,
            last_error: None,
        });
        true
    }

    fn refuse(&self, now: &Snapshot, error: String) {
        self.replace(Snapshot {
            loaded: now.loaded.clone(),
            generation: now.generation,
            last_error: Some(error),
        });
    }

    /// Polls the file every `period` for as long as the runtime lives.
    pub fn watch(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let me = Arc::clone(&me);
                // Building a table takes a fraction of a second: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || me.reload()).await;
            }
        })
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polyvision_calibration::{CameraCalibration, Homography, LensModel, PitchSize};

    fn sample(note: &str) -> CalibrationFile {
        let mut f = CalibrationFile::new(
            PitchSize::default(),
            vec![CameraCalibration {
                name: "view".into(),
                image_size: [1280, 720],
                lens: LensModel::pinhole(1280.0, 1280.0, 640.0, 360.0),
                pitch_from_image: Homography::from_rows([
                    [0.1, 0.0, -64.0],
                    [0.0, -0.1, 36.0],
                    [0.0, 0.0, 1.0],
                ])
                .expect("valid"),
                fit: None,
            }],
        );
        f.created.note = Some(note.into());
        f
    }

    #[test]
    fn swaps_valid_files_and_refuses_broken_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("calibration.json");
        let active = ActiveCalibration::open(&path, 32);
        assert!(active.current().loaded.is_none());
        sample("one").save(&path).expect("save");
        assert!(active.reload());
        assert_eq!(active.current().generation, 1);
        assert!(!active.reload(), "unchanged file is not reloaded");
        std::fs::write(&path, "{\"format\": \"polyvision-calibration\"").expect("write");
        assert!(!active.reload());
        let now = active.current();
        assert_eq!(now.generation, 1);
        assert!(now.last_error.is_some());
        let kept = now.loaded.as_ref().expect("still loaded");
        assert_eq!(kept.file.created.note.as_deref(), Some("one"));
        sample("two").save(&path).expect("save");
        assert!(active.reload());
        let now = active.current();
        assert_eq!(now.generation, 2);
        assert!(now.last_error.is_none());
    }
}
