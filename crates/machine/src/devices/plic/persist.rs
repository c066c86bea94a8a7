use super::device::{Plic, CONTEXTS, NUM_SOURCES, WORDS};
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of the PLIC: bit vectors are 32-bit words, source `n` at bit `n % 32` of word `n / 32`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlicState {
    pub priority: Vec<u32>,
    pub pending: Vec<u32>,
    pub claimed: Vec<u32>,
    pub level: Vec<u32>,
    pub enable: Vec<Vec<u32>>,
    pub threshold: Vec<u32>,
}

fn invalid(reason: String) -> DeviceError {
    DeviceError::InvalidState { device: "plic", reason }
}

fn words<const N: usize>(field: &str, v: &[u32]) -> Result<[u32; N], DeviceError> {
    let arr: [u32; N] = v
        .try_into()
        .map_err(|_| invalid(format!("{field} has {} words, expected {N}", v.len())))?;
    if arr[0] & 1 != 0 {
        return Err(invalid(format!("{field} sets a bit for source 0, which does not exist")));
    }
    Ok(arr)
}

impl Persist for Plic {
    type State = PlicState;
    type ConstructorArgs = ();
    type Error = DeviceError;

    fn save(&self) -> PlicState {
        PlicState {
            priority: self.priority.clone(),
            pending: self.pending.to_vec(),
            claimed: self.claimed.to_vec(),
            level: self.level.to_vec(),
            enable: self.enable.iter().map(|e| e.to_vec()).collect(),
            threshold: self.threshold.to_vec(),
        }
    }

    fn restore(_args: (), s: &PlicState) -> Result<Self, DeviceError> {
        if s.priority.len() != NUM_SOURCES as usize {
            return Err(invalid(format!("{} priorities, expected {NUM_SOURCES}", s.priority.len())));
        }
        if let Some(i) = s.priority.iter().position(|&p| p > 7) {
            return Err(invalid(format!("priority of source {i} is {}, above 7", s.priority[i])));
        }
        if s.enable.len() != CONTEXTS || s.threshold.len() != CONTEXTS {
            return Err(invalid(format!(
                "{} enable sets and {} thresholds, expected {CONTEXTS} contexts",
                s.enable.len(),
                s.threshold.len()
            )));
        }
        if let Some(t) = s.threshold.iter().find(|&&t| t > 7) {
            return Err(invalid(format!("threshold {t} above 7")));
        }
        let mut enable = [[0u32; WORDS]; CONTEXTS];
        for (ctx, e) in s.enable.iter().enumerate() {
            enable[ctx] = words("enable", e)?;
        }
        let pending = words("pending", &s.pending)?;
        let claimed = words("claimed", &s.claimed)?;
        if pending.iter().zip(&claimed).any(|(p, c)| p & c != 0) {
            return Err(invalid("a source is both pending and claimed".into()));
        }
        Ok(Plic {
            priority: s.priority.clone(),
            pending,
            claimed,
            level: words("level", &s.level)?,
            enable,
            threshold: [s.threshold[0], s.threshold[1]],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusal() {
        let mut p = Plic::default();
        p.write(4 * 10, 4, 3).unwrap();
        p.write(0x2080, 4, 1 << 10).unwrap();
        p.set_level(10, true);
        p.read(0x20_1004, 4).unwrap();
        let s = p.save();
        p.write(0x20_1004, 4, 10).unwrap();
        p.write(4 * 10, 4, 1).unwrap();
        let r = Plic::restore((), &s).unwrap();
        assert_eq!(r.save(), s);
        assert_eq!(r, {
            let mut q = Plic::restore((), &s).unwrap();
            q.set_level(10, true);
            q
        });

        let mut bad = s.clone();
        bad.priority[4] = 9;
        let err = Plic::restore((), &bad).unwrap_err().to_string();
        assert!(err.contains("plic") && err.contains("source 4"), "{err}");
        let mut bad = s.clone();
        bad.enable.pop();
        assert!(Plic::restore((), &bad).is_err());
        let mut bad = s;
        bad.pending[0] |= 1 << 10;
        assert!(Plic::restore((), &bad).unwrap_err().to_string().contains("both pending and claimed"));
    }
}
