//! Who is on the pitch, what they look like, and where they are on one frame.

use serde::Serialize;

/// Deterministic pseudo-random numbers (SplitMix64): the same seed gives the same match on
/// every machine, independent of any crate's algorithm changes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    /// Approximately normal (sum of uniforms), mean 0, standard deviation 1.
    pub fn normal(&mut self) -> f64 {
        (0..6).map(|_| self.unit()).sum::<f64>() * std::f64::consts::SQRT_2
            - 6.0 * std::f64::consts::FRAC_1_SQRT_2
    }
    /// Uniform index below `n` (n > 0).
    pub fn index(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// What an object is, as written to the truth files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An outfield player.
    Player,
    /// A goalkeeper.
    Goalkeeper,
    /// The referee.
    Referee,
    /// An assistant referee on a touchline.
    AssistantReferee,
    /// The ball.
    Ball,
}

impl Role {
    /// Class number in the MOTChallenge truth files: 1 player, 2 goalkeeper, 3 referee or
    /// assistant, 4 ball.
    pub fn mot_class(self) -> u8 {
        match self {
            Role::Player => 1,
            Role::Goalkeeper => 2,
            Role::Referee | Role::AssistantReferee => 3,
            Role::Ball => 4,
        }
    }
    /// Name used in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Role::Player => "player",
            Role::Goalkeeper => "goalkeeper",
            Role::Referee => "referee",
            Role::AssistantReferee => "assistant_referee",
            Role::Ball => "ball",
        }
    }
}

/// Which side an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The home team (ids 1–11).
    Home,
    /// The away team (ids 12–22).
    Away,
    /// Referees.
    Officials,
    /// The ball.
    None,
}

impl Side {
    /// Name used in CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Side::Home => "home",
            Side::Away => "away",
            Side::Officials => "officials",
            Side::None => "none",
        }
    }
}

/// An sRGB colour.
pub type Rgb = [u8; 3];

/// Clothing and skin of one person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Look {
    /// Shirt colour.
    pub shirt: Rgb,
    /// Shorts colour.
    pub shorts: Rgb,
    /// Socks colour.
    pub socks: Rgb,
    /// Skin colour.
    pub skin: Rgb,
    /// Hair colour.
    pub hair: Rgb,
    /// Boot colour.
    pub boots: Rgb,
}

/// One person on the pitch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    /// Stable id: 1–11 home (1 = goalkeeper), 12–22 away (12 = goalkeeper), 23 referee,
    /// 24–25 assistants.
    pub id: u32,
    /// What the person is.
    pub role: Role,
    /// Team.
    pub side: Side,
    /// Shirt number (0 for officials).
    pub number: u8,
    /// Standing height, metres.
    pub height_m: f64,
    /// Width relative to an average build.
    pub build: f64,
    /// Appearance.
    pub look: Look,
}

/// Id of the ball in the truth files.
pub const BALL_ID: u32 = 26;
/// Radius of a size-5 ball, metres.
pub const BALL_RADIUS_M: f64 = 0.11;

/// Everyone on the pitch.
#[derive(Debug, Clone, Serialize)]
pub struct Cast {
    /// Players (home then away) and officials, by id order.
    pub people: Vec<Person>,
}

const SKINS: [Rgb; 6] = [
    [236, 200, 170],
    [224, 180, 145],
    [198, 150, 110],
    [160, 110, 75],
    [120, 80, 55],
    [90, 60, 42],
];
const HAIR: [Rgb; 5] = [
    [30, 22, 16],
    [60, 40, 25],
    [110, 80, 45],
    [20, 20, 20],
    [170, 140, 90],
];

/// Clothing of one kit: shirt, shorts, socks.
pub type Kit = (Rgb, Rgb, Rgb);

/// The five kits on the pitch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kits {
    /// Home outfield players.
    pub home: Kit,
    /// Home goalkeeper.
    pub home_goalkeeper: Kit,
    /// Away outfield players.
    pub away: Kit,
    /// Away goalkeeper.
    pub away_goalkeeper: Kit,
    /// Referee and assistants.
    pub officials: Kit,
}

/// Shirt colours a random kit is drawn from: saturated or light, never near the officials'
/// black.
const KIT_COLOURS: [Rgb; 14] = [
    [200, 30, 38],
    [28, 70, 180],
    [245, 245, 245],
    [250, 210, 30],
    [40, 180, 70],
    [250, 140, 20],
    [120, 40, 150],
    [110, 190, 240],
    [240, 110, 170],
    [130, 20, 40],
    [20, 120, 110],
    [190, 220, 40],
    [150, 150, 160],
    [10, 40, 110],
];
/// Colours officials wear: mostly black, sometimes the bright alternatives of modern leagues.
const OFFICIAL_COLOURS: [Rgb; 3] = [[25, 25, 25], [22, 22, 30], [35, 35, 35]];

fn colour_distance(a: Rgb, b: Rgb) -> f64 {
    (0..3)
        .map(|k| (a[k] as f64 - b[k] as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

impl Kits {
    /// The kits of the default rendering: red against blue, referees in black.
    pub fn standard() -> Self {
        Kits {
            home: ([200, 30, 38], [245, 245, 245], [200, 30, 38]),
            home_goalkeeper: ([40, 180, 70], [30, 30, 30], [40, 180, 70]),
            away: ([28, 70, 180], [20, 30, 70], [240, 240, 240]),
            away_goalkeeper: ([250, 140, 20], [250, 140, 20], [250, 140, 20]),
            officials: ([25, 25, 25], [20, 20, 20], [25, 25, 25]),
        }
    }

    /// Random kits for `seed`, as a league would allow them: the five shirts clearly apart
    /// (two teams, two goalkeepers, the officials).
    pub fn random(seed: u64) -> Self {
        let mut rng = Rng::new(seed.wrapping_mul(0x9E37).wrapping_add(11));
        let official = OFFICIAL_COLOURS[rng.index(OFFICIAL_COLOURS.len())];
        let mut shirts: Vec<Rgb> = vec![official];
        // Rejection sampling from a fixed palette; 14 colours always leave four apart.
        while shirts.len() < 5 {
            let c = KIT_COLOURS[rng.index(KIT_COLOURS.len())];
            if shirts.iter().all(|s| colour_distance(*s, c) > 110.0) {
                shirts.push(c);
            }
        }
        let mut kit = |shirt: Rgb| -> Kit {
            let shorts = match rng.index(3) {
                0 => shirt,
                1 => [240, 240, 240],
                _ => [25, 25, 30],
            };
            let socks = if rng.unit() < 0.7 { shirt } else { shorts };
            (shirt, shorts, socks)
        };
        Kits {
            home: kit(shirts[1]),
            away: kit(shirts[2]),
            home_goalkeeper: kit(shirts[3]),
            away_goalkeeper: kit(shirts[4]),
            officials: (official, [20, 20, 20], official),
        }
    }
}

impl Cast {
    /// The standard cast: two teams of eleven in contrasting kits, a referee and two assistants.
    pub fn standard(seed: u64) -> Cast {
        Cast::with_kits(seed, Kits::standard())
    }

    /// Two teams of eleven, a referee and two assistants, in `kits`.
    pub fn with_kits(seed: u64, kits: Kits) -> Cast {
        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
        let Kits {
            home,
            home_goalkeeper: home_gk,
            away,
            away_goalkeeper: away_gk,
            officials,
        } = kits;
        let mut people = Vec::new();
        for id in 1..=25u32 {
            let (role, side, kit, number) = match id {
                1 => (Role::Goalkeeper, Side::Home, home_gk, 1),
                2..=11 => (Role::Player, Side::Home, home, id as u8),
                12 => (Role::Goalkeeper, Side::Away, away_gk, 1),
                13..=22 => (Role::Player, Side::Away, away, (id - 11) as u8),
                23 => (Role::Referee, Side::Officials, officials, 0),
                _ => (Role::AssistantReferee, Side::Officials, officials, 0),
            };
            let tall = if role == Role::Goalkeeper { 0.06 } else { 0.0 };
            let height_m = (1.80 + tall + 0.06 * rng.normal()).clamp(1.64, 1.98);
            let build = (1.0 + 0.07 * rng.normal()).clamp(0.85, 1.18);
            let skin = SKINS[rng.index(SKINS.len())];
            let hair = HAIR[rng.index(HAIR.len())];
            let boots = if rng.unit() < 0.5 {
                [20, 20, 20]
            } else {
                [235, 235, 235]
            };
            people.push(Person {
                id,
                role,
                side,
                number,
                height_m,
                build,
                look: Look {
                    shirt: kit.0,
                    shorts: kit.1,
                    socks: kit.2,
                    skin,
                    hair,
                    boots,
                },
            });
        }
        Cast { people }
    }

    /// The person with this id.
    pub fn person(&self, id: u32) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }
}

/// A person's state on one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PersonState {
    /// Id in the [`Cast`].
    pub id: u32,
    /// Position on the pitch, metres.
    pub pos: [f64; 2],
    /// Velocity, metres per second.
    pub vel: [f64; 2],
    /// Phase of the running stride, radians (drives the legs and arms).
    pub stride_phase: f64,
}

/// The ball's state on one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BallState {
    /// Centre of the ball's ground contact: x, y on the pitch and z the height of its lowest
    /// point above the grass, metres.
    pub pos: [f64; 3],
    /// Velocity, metres per second.
    pub vel: [f64; 3],
}

/// Everything that moves, on one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameState {
    /// Frame index, from 0.
    pub index: u64,
    /// Time since the start of the rendering, seconds.
    pub time_s: f64,
    /// Every person on the pitch.
    pub people: Vec<PersonState>,
    /// The ball, when it is in play and tracked.
    pub ball: Option<BallState>,
}

/// Advances stride phases from velocities: one full cycle per two steps, about 2.2 m of running.
pub fn advance_strides(prev: &[PersonState], next: &mut [PersonState], dt: f64) {
    for (n, p) in next.iter_mut().zip(prev) {
        let speed = n.vel[0].hypot(n.vel[1]);
        let stride = 1.2 + 0.13 * speed;
        n.stride_phase =
            (p.stride_phase + std::f64::consts::TAU * speed * dt / stride) % std::f64::consts::TAU;
    }
}
