//! The daemon's configuration: TOML, merged over the embedded defaults, validated with errors
//! that name the field.

use polyvision_calibration::LensModel;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../edge.default.toml");

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Calibration settings.
    pub calibration: CalibrationConfig,
    /// Camera sources.
    #[serde(default)]
    pub capture: CaptureConfig,
    /// The technician's page.
    pub web: WebConfig,
}

/// `[calibration]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationConfig {
    /// The calibration file.
    pub file: PathBuf,
    /// Width of a newly planned panorama, pixels.
    pub panorama_width: u32,
    /// Blend band across the seam, pixels.
    pub band_px: u32,
}

/// `[capture]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Camera L.
    pub left: Option<SourceConfig>,
    /// Camera R.
    pub right: Option<SourceConfig>,
}

impl CaptureConfig {
    /// The configured cameras with their names, L first.
    pub fn cameras(&self) -> Vec<(&'static str, &SourceConfig)> {
        [("left", &self.left), ("right", &self.right)]
            .into_iter()
            .filter_map(|(name, s)| s.as_ref().map(|s| (name, s)))
            .collect()
    }
}

/// One camera source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A video file or a PNG.
    pub source: PathBuf,
    /// The frame the calibration page shows (0-based).
    #[serde(default)]
    pub still_frame: u64,
    /// The camera's lens, until the calibration file holds one.
    #[serde(default)]
    pub lens: Option<LensModel>,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Listen address.
    pub listen: String,
    /// The technician's PIN.
    #[serde(default)]
    pub technician_pin: Option<String>,
    /// A file holding the PIN.
    #[serde(default)]
    pub technician_pin_file: Option<PathBuf>,
}

/// A configuration that cannot be used; names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not TOML, or a field of the wrong type or unknown.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (it names the field and line).
        message: String,
    },
    /// A value out of range.
    #[error("{path}: field `{field}`: {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

impl EdgeConfig {
    /// Reads `path` over the defaults; relative paths become relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        // Absolute, so that logs and the page show where the files really are.
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_toml(&text, path, &base)
    }

    /// Parses a document over the defaults.
    pub fn from_toml(text: &str, origin: &Path, base: &Path) -> Result<Self, ConfigError> {
        let parse = |t: &str| -> Result<toml::Table, ConfigError> {
            t.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
                path: origin.to_owned(),
                message: e.to_string(),
            })
        };
        let mut merged = parse(DEFAULT_CONFIG)?;
        merge(&mut merged, parse(text)?);
        let mut config: EdgeConfig =
            merged
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: origin.to_owned(),
                    message: e.to_string(),
                })?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut config.calibration.file);
        if let Some(f) = config.web.technician_pin_file.as_mut() {
            resolve(f);
        }
        for s in [&mut config.capture.left, &mut config.capture.right]
            .into_iter()
            .flatten()
        {
            resolve(&mut s.source);
        }
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, problem: String| ConfigError::Invalid {
            path: origin.to_owned(),
            field: field.into(),
            problem,
        };
        if !(320..=16384).contains(&self.calibration.panorama_width) {
            return Err(bad(
                "calibration.panorama_width",
                format!("{} is outside 320–16384", self.calibration.panorama_width),
            ));
        }
        if self.calibration.band_px > 512 {
            return Err(bad(
                "calibration.band_px",
                format!("{} is more than 512", self.calibration.band_px),
            ));
        }
        if self.web.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(bad(
                "web.listen",
                format!(
                    "\"{}\" is not an address like 0.0.0.0:8080",
                    self.web.listen
                ),
            ));
        }
        match (&self.web.technician_pin, &self.web.technician_pin_file) {
            (None, None) => {
                return Err(bad(
                    "web.technician_pin",
                    "set technician_pin or technician_pin_file; the calibration page is never left open".into(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(bad(
                    "web.technician_pin_file",
                    "give technician_pin or technician_pin_file, not both".into(),
                ));
            }
            _ => {}
        }
        if let Some(pin) = &self.web.technician_pin
            && pin.trim().chars().count() < 6
        {
            return Err(bad(
                "web.technician_pin",
                "must have at least 6 characters".into(),
            ));
        }
        Ok(())
    }

    /// The technician's PIN, read from the file when configured that way.
    pub fn technician_pin(&self) -> Result<String, ConfigError> {
        match (&self.web.technician_pin, &self.web.technician_pin_file) {
            (Some(pin), _) => Ok(pin.trim().to_string()),
            (None, Some(file)) => {
                let pin = std::fs::read_to_string(file)
                    .map_err(|source| ConfigError::Io {
                        path: file.clone(),
                        source,
                    })?
                    .trim()
                    .to_string();
                if pin.chars().count() < 6 {
                    return Err(ConfigError::Invalid {
                        path: file.clone(),
                        field: "web.technician_pin_file".into(),
                        problem: "the PIN in it must have at least 6 characters".into(),
                    });
                }
                Ok(pin)
            }
            (None, None) => Err(ConfigError::Invalid {
                path: PathBuf::from("<config>"),
                field: "web.technician_pin".into(),
                problem: "not set".into(),
            }),
        }
    }
}

/// Overlays `over` onto `base`, table by table.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
        EdgeConfig::from_toml(text, Path::new("edge.toml"), Path::new("/etc/pv"))
    }

    #[test]
    fn defaults_fill_in_and_paths_resolve() {
        let c = parse("[web]\ntechnician_pin = \"482913\"\n[capture.left]\nsource = \"l.mkv\"\n")
            .expect("valid");
        assert_eq!(c.calibration.file, Path::new("/etc/pv/calibration.json"));
        assert_eq!(c.calibration.panorama_width, 3840);
        assert_eq!(c.capture.cameras().len(), 1);
        assert_eq!(c.capture.cameras()[0].1.source, Path::new("/etc/pv/l.mkv"));
        assert_eq!(c.technician_pin().expect("pin"), "482913");
    }

    #[test]
    fn errors_name_the_field() {
        let err = parse("").unwrap_err().to_string();
        assert!(err.contains("web.technician_pin"), "{err}");
        let err = parse("[web]\ntechnician_pin = \"12\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 6"), "{err}");
        let err = parse("[web]\ntechnician_pin = \"123456\"\nlisten = \"nowhere\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("web.listen"), "{err}");
        let err = parse("[web]\ntechnician_pin = \"123456\"\n[calibration]\nfiel = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fiel"), "{err}");
    }

    #[test]
    fn the_embedded_defaults_parse() {
        let table: toml::Table = DEFAULT_CONFIG.parse().expect("toml");
        assert!(table.contains_key("calibration") && table.contains_key("web"));
    }
}
