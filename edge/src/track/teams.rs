//! Which team a track plays for, by clustering shirt colours per match.
//!
//! Two kits per match, and nobody tells the rig which. The outfield players' tracks (class
//! player, with a measured shirt colour) are split into two clusters by k-means in RGB, started
//! from the two most different tracks; each track joins its nearer centre. Goalkeepers and
//! referees keep their class (their kits differ from both teams by the laws of the game).
//! Teams are named `team_a` (the cluster of the track seen first) and `team_b`.

use super::tracker::{Class, TrackPoint};
use std::collections::BTreeMap;

/// The team of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Team {
    /// The first team.
    A,
    /// The second team.
    B,
    /// A goalkeeper.
    Goalkeeper,
    /// A referee or assistant.
    Referee,
    /// No colour measured.
    Unknown,
}

impl Team {
    /// The CSV spelling.
    pub fn name(self) -> &'static str {
        match self {
            Team::A => "team_a",
            Team::B => "team_b",
            Team::Goalkeeper => "goalkeeper",
            Team::Referee => "referee",
            Team::Unknown => "unknown",
        }
    }
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f32>().sqrt()
}

/// Teams of every track of people, by id.
pub fn assign_teams(points: &[TrackPoint]) -> BTreeMap<u32, Team> {
    // Each track's last colour and class (the running mean is most settled at the end).
    let mut last: BTreeMap<u32, (u64, Class, Option<[f32; 3]>)> = BTreeMap::new();
    for p in points {
        let e = last.entry(p.id).or_insert((p.frame, p.class, p.colour));
        if p.frame >= e.0 {
            *e = (p.frame, p.class, p.colour.or(e.2));
        }
    }
    let players: Vec<(u32, [f32; 3])> = last
        .iter()
        .filter(|(_, (_, class, _))| *class == Class::Player)
        .filter_map(|(&id, (_, _, c))| Some((id, (*c)?)))
        .collect();
    let mut out: BTreeMap<u32, Team> = last
        .iter()
        .filter(|(_, (_, class, _))| *class != Class::Ball)
        .map(|(&id, (_, class, _))| {
            let team = match class {
                Class::Goalkeeper => Team::Goalkeeper,
                Class::Referee => Team::Referee,
                _ => Team::Unknown,
            };
            (id, team)
        })
        .collect();
    if players.len() < 2 {
        return out;
    }
    // Start from the two most different colours.
    let mut centres = [players[0].1, players[1].1];
    let mut best = -1.0;
    for (i, a) in players.iter().enumerate() {
        for b in &players[i + 1..] {
            let d = distance(a.1, b.1);
            if d > best {
                best = d;
                centres = [a.1, b.1];
            }
        }
    }
    let mut labels = vec![0usize; players.len()];
    for _ in 0..20 {
        for (l, p) in labels.iter_mut().zip(&players) {
            *l = usize::from(distance(p.1, centres[1]) < distance(p.1, centres[0]));
        }
        for (k, centre) in centres.iter_mut().enumerate() {
            let members: Vec<[f32; 3]> = players
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == k)
                .map(|(p, _)| p.1)
                .collect();
            if !members.is_empty() {
                let n = members.len() as f32;
                *centre = std::array::from_fn(|c| members.iter().map(|m| m[c]).sum::<f32>() / n);
            }
        }
    }
    // The cluster of the lowest track id is team A, so names are stable for a given file.
    let first = labels[0];
    for (p, l) in players.iter().zip(&labels) {
        out.insert(p.0, if *l == first { Team::A } else { Team::B });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: u32, class: Class, colour: [f32; 3]) -> TrackPoint {
        TrackPoint {
            frame: 1,
            id,
            bbox: [0.0; 4],
            pitch: [0.0; 2],
            measured: None,
            cov: None,
            class,
            conf: 0.9,
            colour: Some(colour),
        }
    }

    #[test]
    fn two_kits_split_into_two_teams() {
        let red = [200.0, 30.0, 38.0];
        let blue = [28.0, 70.0, 180.0];
        let mut pts = Vec::new();
        for i in 0..10 {
            let jitter = i as f32 * 2.0;
            pts.push(point(
                2 * i + 1,
                Class::Player,
                [red[0] - jitter, red[1] + jitter, red[2]],
            ));
            pts.push(point(
                2 * i + 2,
                Class::Player,
                [blue[0] + jitter, blue[1], blue[2] - jitter],
            ));
        }
        pts.push(point(50, Class::Referee, [25.0, 25.0, 25.0]));
        let teams = assign_teams(&pts);
        for i in 0..10 {
            assert_eq!(teams[&(2 * i + 1)], Team::A);
            assert_eq!(teams[&(2 * i + 2)], Team::B);
        }
        assert_eq!(teams[&50], Team::Referee);
    }
}
