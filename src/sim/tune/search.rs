//! The search: a space-filling start (a Latin hypercube), then generations of children bred from
//! the current Pareto front (mutation at several scales, some crossover), run in parallel, until
//! the budget is spent or the front stops moving.
//!
//! Everything random comes from one seeded generator and every generation is fixed before it
//! runs, so a search gives the same result on any number of threads.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Variants bred per generation (and the smallest first generation). Fixed, so a search is the
/// same on any number of threads; more threads than this only speed up the first generation.
const GENERATION: usize = 8;

/// The three scores of a variant; every one is a sum over the replay, so it only grows as the
/// replay goes on (which is what lets a losing variant be stopped early).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scores {
    /// Node-minutes billed.
    pub node_minutes: f64,
    /// Minutes with per-node load over the limit.
    pub over_limit: f64,
    /// Scale actions (outs and ins).
    pub actions: u32,
}

impl Scores {
    /// `self` is no worse than `other` in every score and better in one.
    pub fn dominates(&self, other: &Scores) -> bool {
        let no_worse = self.node_minutes <= other.node_minutes
            && self.over_limit <= other.over_limit
            && self.actions <= other.actions;
        no_worse
            && (self.node_minutes < other.node_minutes
                || self.over_limit < other.over_limit
                || self.actions < other.actions)
    }

    /// `self` is within a small tolerance of being at least as good as `other` everywhere:
    /// `other` does not move the front in any way a person would notice.
    fn nearly_covers(&self, other: &Scores) -> bool {
        self.node_minutes <= other.node_minutes * 1.005
            && self.over_limit <= other.over_limit + (other.over_limit * 0.02).max(1.0)
            && self.actions as f64 <= other.actions as f64 + (other.actions as f64 * 0.02).max(1.0)
    }

    /// Sum of two sets of scores (two traces).
    pub fn plus(&self, other: &Scores) -> Scores {
        Scores {
            node_minutes: self.node_minutes + other.node_minutes,
            over_limit: self.over_limit + other.over_limit,
            actions: self.actions + other.actions,
        }
    }
}

/// What running one variant gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// It ran to the end of the tuning days.
    Scored(Scores),
    /// It was stopped early: its running scores were already beaten by a front member's final
    /// ones, so it could not join the front.
    Pruned,
    /// The policy fields did not make a valid policy (the reason).
    Invalid(String),
}

/// One variant the search ran.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// Its point in the unit cube.
    pub x: Vec<f64>,
    /// What came of it.
    pub outcome: Outcome,
    /// The generation that bred it (0: the starting policy and the space-filling start).
    pub generation: usize,
}

impl Evaluated {
    /// Its scores, if it ran to the end.
    pub fn scores(&self) -> Option<Scores> {
        match self.outcome {
            Outcome::Scored(s) => Some(s),
            _ => None,
        }
    }
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It ran `--budget` variants.
    Budget,
    /// The front did not move for this many generations in a row.
    Converged(usize),
    /// No new variant could be bred (a small space, all of it run).
    Exhausted,
}

/// Search settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most variants to run, the starting policy included.
    pub budget: usize,
    /// Generations without the front moving before the search stops.
    pub patience: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
}

/// The result of a search.
#[derive(Debug, Clone)]
pub struct Found {
    /// Every variant run, the starting policy first.
    pub evaluated: Vec<Evaluated>,
    /// Indices into `evaluated` of the Pareto front, cheapest first.
    pub front: Vec<usize>,
    /// Generations run after the space-filling start.
    pub generations: usize,
    /// Why it ended.
    pub stop: Stop,
}

/// A small, fast, seeded generator (SplitMix64): the search needs reproducibility, not
/// cryptographic quality, and no new crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next_u64(&mut self) -> u64 {
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

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Standard normal (Box–Muller).
    fn gauss(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// `n` points spread over the unit cube of `d` dimensions: each dimension's range cut into `n`
/// strata, every stratum used once (a Latin hypercube).
pub fn latin_hypercube(rng: &mut Rng, n: usize, d: usize) -> Vec<Vec<f64>> {
    let mut points = vec![vec![0.0; d]; n];
    for j in 0..d {
        let mut strata: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            strata.swap(i, rng.below(i + 1));
        }
        for (i, p) in points.iter_mut().enumerate() {
            p[j] = (strata[i] as f64 + rng.unit()) / n as f64;
        }
    }
    points
}

/// Run `points` on `threads` workers; `worker()` makes one worker's evaluator (each keeps its
/// own scratch copy of the scenarios). `front` is the front's scores when the batch started;
/// `done(k)` is called on this thread as results come in.
pub fn run_batch<W, E>(
    points: &[Vec<f64>],
    front: &[Scores],
    threads: usize,
    worker: &W,
    mut done: impl FnMut(usize),
) -> Vec<Outcome>
where
    W: Fn() -> E + Sync,
    E: FnMut(&[f64], &[Scores]) -> Outcome,
{
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<Outcome>> = vec![None; points.len()];
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Outcome)>();
        for _ in 0..threads.clamp(1, points.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                let mut eval = worker();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(x) = points.get(i) else { break };
                    if tx.send((i, eval(x, front))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (k, (i, outcome)) in rx.iter().enumerate() {
            out[i] = Some(outcome);
            done(k + 1);
        }
    });
    // A worker that panicked sent nothing for its point: the panic itself propagates out of the
    // scope above, so every slot is filled here.
    out.into_iter().map(|o| o.unwrap_or_else(|| Outcome::Invalid("not run".into()))).collect()
}

/// The front of `evaluated`: indices of scored variants no other scored variant dominates (of
/// equal scores, the first), cheapest first.
pub fn pareto_front(evaluated: &[Evaluated]) -> Vec<usize> {
    let mut front: Vec<usize> = Vec::new();
    for (i, e) in evaluated.iter().enumerate() {
        let Some(s) = e.scores() else { continue };
        let beaten = front.iter().any(|&f| {
            let fs = evaluated[f].scores().unwrap_or_default();
            fs.dominates(&s) || fs == s
        });
        if beaten {
            continue;
        }
        front.retain(|&f| !s.dominates(&evaluated[f].scores().unwrap_or_default()));
        front.push(i);
    }
    front.sort_by(|&a, &b| {
        let (x, y) = (evaluated[a].scores().unwrap_or_default(), evaluated[b].scores().unwrap_or_default());
        x.node_minutes.total_cmp(&y.node_minutes).then(x.over_limit.total_cmp(&y.over_limit)).then(a.cmp(&b))
    });
    front
}

/// Breed one child from the front: a parent (more often one that meets the constraints, so the
/// search spends its budget where the recommendation will come from), sometimes crossed with a
/// second member, then mutated at a randomly chosen scale.
fn breed(rng: &mut Rng, front: &[&[f64]], feasible: &[&[f64]], d: usize) -> Vec<f64> {
    let pick = |rng: &mut Rng, from: &[&[f64]]| from[rng.below(from.len())].to_vec();
    let mut x = if !feasible.is_empty() && rng.unit() < 0.6 { pick(rng, feasible) } else { pick(rng, front) };
    if front.len() > 1 && rng.unit() < 0.3 {
        let other = pick(rng, front);
        for (a, b) in x.iter_mut().zip(other) {
            if rng.unit() < 0.5 {
                *a = b;
            }
        }
    }
    let sigma = [0.03, 0.1, 0.3][rng.below(3)];
    let rate = (2.0 / d as f64).min(1.0);
    let mut changed = false;
    while !changed {
        for v in x.iter_mut() {
            if rng.unit() < rate {
                let mut y = *v + sigma * rng.gauss();
                // Reflect at the walls so the edges are not over-sampled.
                if y < 0.0 {
                    y = -y;
                }
                if y > 1.0 {
                    y = 2.0 - y;
                }
                *v = y.clamp(0.0, 1.0);
                changed = true;
            }
        }
    }
    x
}

/// Search. `key(x)` names the variant a point decodes to (two points with one key are run once);
/// `start` is the starting policy's point, run first; `meets(scores)` says whether a variant meets
/// the constraints; `worker()` makes an evaluator; `progress(done, budget)` reports.
#[allow(clippy::too_many_arguments)]
pub fn search<K, W, E>(
    cfg: &Config,
    d: usize,
    start: Vec<f64>,
    key: K,
    meets: impl Fn(&Scores) -> bool,
    worker: &W,
    mut progress: impl FnMut(usize),
) -> Found
where
    K: Fn(&[f64]) -> Vec<u64>,
    W: Fn() -> E + Sync,
    E: FnMut(&[f64], &[Scores]) -> Outcome,
{
    let mut rng = Rng::new(cfg.seed);
    let budget = cfg.budget.max(1);
    let mut seen: HashSet<Vec<u64>> = HashSet::new();
    let mut evaluated: Vec<Evaluated> = Vec::new();

    // Generation 0: the starting policy and a Latin hypercube around the whole space. Neither
    // its size nor a later generation's depends on the thread count (the search would otherwise
    // differ between machines, and `clamp` panicked once 4 x threads passed 96).
    let n0 = (budget / 8).clamp(GENERATION, 96).min(budget);
    let mut first = vec![start];
    first.extend(latin_hypercube(&mut rng, n0.saturating_sub(1), d));
    first.retain(|x| seen.insert(key(x)));
    let mut done_before = 0;
    let outcomes = run_batch(&first, &[], cfg.threads, worker, |k| progress(done_before + k));
    done_before += first.len();
    evaluated.extend(first.into_iter().zip(outcomes).map(|(x, outcome)| Evaluated { x, outcome, generation: 0 }));
    let mut front = pareto_front(&evaluated);

    let batch = GENERATION;
    let mut still = 0;
    let mut generation = 0;
    let stop = loop {
        if evaluated.len() >= budget {
            break Stop::Budget;
        }
        if still >= cfg.patience {
            break Stop::Converged(cfg.patience);
        }
        generation += 1;
        let front_x: Vec<&[f64]> = front.iter().map(|&i| evaluated[i].x.as_slice()).collect();
        let feasible_x: Vec<&[f64]> = front
            .iter()
            .filter(|&&i| evaluated[i].scores().is_some_and(|s| meets(&s)))
            .map(|&i| evaluated[i].x.as_slice())
            .collect();
        let want = batch.min(budget - evaluated.len());
        let mut children = Vec::with_capacity(want);
        let mut tries = 0;
        while children.len() < want && tries < want * 50 {
            tries += 1;
            // Mostly bred from the front; now and then a fresh point, so a front stuck in one
            // corner can still be left.
            let x = if front_x.is_empty() || rng.unit() < 0.1 {
                (0..d).map(|_| rng.unit()).collect()
            } else {
                breed(&mut rng, &front_x, &feasible_x, d)
            };
            if seen.insert(key(&x)) {
                children.push(x);
            }
        }
        if children.is_empty() {
            break Stop::Exhausted;
        }
        let front_scores: Vec<Scores> = front.iter().filter_map(|&i| evaluated[i].scores()).collect();
        let outcomes = run_batch(&children, &front_scores, cfg.threads, worker, |k| progress(done_before + k));
        done_before += children.len();
        let before = evaluated.len();
        evaluated.extend(children.into_iter().zip(outcomes).map(|(x, outcome)| Evaluated { x, outcome, generation }));
        let new_front = pareto_front(&evaluated);
        // The front moved if a new member is not within tolerance of the old front.
        let moved = new_front.iter().filter(|&&i| i >= before).any(|&i| {
            let s = evaluated[i].scores().unwrap_or_default();
            !front_scores.iter().any(|f| f.nearly_covers(&s))
        });
        still = if moved { 0 } else { still + 1 };
        front = new_front;
    };
    Found { evaluated, front, generations: generation, stop }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: f64, o: f64, a: u32) -> Scores {
        Scores { node_minutes: c, over_limit: o, actions: a }
    }

    #[test]
    fn dominance_needs_no_worse_everywhere_and_better_somewhere() {
        assert!(s(1.0, 1.0, 1).dominates(&s(2.0, 1.0, 1)));
        assert!(!s(1.0, 1.0, 1).dominates(&s(1.0, 1.0, 1)));
        assert!(!s(1.0, 2.0, 1).dominates(&s(2.0, 1.0, 1)));
    }

    #[test]
    fn the_front_keeps_the_undominated_once_cheapest_first() {
        let ev = |sc: Scores| Evaluated { x: vec![], outcome: Outcome::Scored(sc), generation: 0 };
        let all = vec![
            ev(s(5.0, 0.0, 3)),
            ev(s(3.0, 4.0, 3)),
            ev(s(6.0, 1.0, 3)), // dominated by the first
            ev(s(3.0, 4.0, 3)), // same as the second
            ev(s(4.0, 4.0, 1)),
            Evaluated { x: vec![], outcome: Outcome::Pruned, generation: 1 },
        ];
        assert_eq!(pareto_front(&all), vec![1, 4, 0]);
    }

    #[test]
    fn a_latin_hypercube_uses_every_stratum_once() {
        let pts = latin_hypercube(&mut Rng::new(7), 10, 3);
        for j in 0..3 {
            let mut strata: Vec<usize> = pts.iter().map(|p| (p[j] * 10.0) as usize).collect();
            strata.sort();
            assert_eq!(strata, (0..10).collect::<Vec<_>>());
        }
    }

    /// A two-objective toy: cost falls and overload rises as x[0] grows; x[1] only adds cost.
    /// The front is x[1] = 0 along x[0].
    fn toy(x: &[f64]) -> Scores {
        let a = (x[0] * 20.0).round() / 20.0;
        let b = (x[1] * 20.0).round() / 20.0;
        s(100.0 * (1.0 - a) + 50.0 * b, 100.0 * a * a, 0)
    }

    fn toy_key(x: &[f64]) -> Vec<u64> {
        x.iter().map(|v| (v * 20.0).round() as u64).collect()
    }

    #[test]
    fn the_search_finds_the_toy_front_and_is_the_same_on_any_number_of_threads() {
        let worker = || |x: &[f64], _: &[Scores]| Outcome::Scored(toy(x));
        let run = |threads| {
            let cfg = Config { budget: 200, patience: 15, seed: 3, threads };
            search(&cfg, 2, vec![0.5, 0.5], toy_key, |sc| sc.over_limit <= 30.0, &worker, |_| {})
        };
        let one = run(1);
        let keys = |f: &Found| f.front.iter().map(|&i| toy_key(&f.evaluated[i].x)).collect::<Vec<_>>();
        let all = |f: &Found| f.evaluated.iter().map(|e| toy_key(&e.x)).collect::<Vec<_>>();
        // 25 threads is the default on a 25-core machine (it panicked: "min > max"); 5 made
        // larger generations than 2 did, so the same seed searched differently.
        for threads in [2, 5, 25, 64] {
            let other = run(threads);
            assert_eq!(keys(&one), keys(&other), "{threads} threads");
            assert_eq!(all(&one), all(&other), "{threads} threads");
        }
        // Every front member has x[1] = 0, and the cheapest one under the constraint is found:
        // 100 a² <= 30 holds up to a = 0.5 on the grid (0.55² = 0.3025).
        for &i in &one.front {
            assert_eq!(toy_key(&one.evaluated[i].x)[1], 0, "{:?}", one.evaluated[i]);
        }
        let best = one
            .front
            .iter()
            .filter_map(|&i| one.evaluated[i].scores())
            .filter(|sc| sc.over_limit <= 30.0)
            .map(|sc| sc.node_minutes)
            .fold(f64::INFINITY, f64::min);
        assert_eq!(best, 50.0);
        assert!(one.evaluated.len() <= 200);
    }

    #[test]
    fn a_small_space_ends_when_nothing_new_can_be_bred() {
        let worker = || |x: &[f64], _: &[Scores]| Outcome::Scored(s(x[0], 1.0 - x[0], 0));
        let key = |x: &[f64]| vec![(x[0] * 3.0).round() as u64];
        let cfg = Config { budget: 1000, patience: 1000, seed: 1, threads: 2 };
        let found = search(&cfg, 1, vec![0.0], key, |_| true, &worker, |_| {});
        assert_eq!(found.stop, Stop::Exhausted);
        assert_eq!(found.evaluated.len(), 4);
    }
}
