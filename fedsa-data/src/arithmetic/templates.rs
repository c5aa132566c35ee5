//! The sentence templates of the arithmetic problems. Each kind has two phrasings; the numbers
//! appear in the question in the order the operation uses them (`a + b`, `a - b`, `a * b`,
//! `a / b`, `a * b - c`), and names and objects hold no digits, so a problem can be checked
//! from its question's numbers alone.

use fedsa_core::SeededRng;

use super::{Problem, ProblemKind};

/// Templates per kind.
const TEMPLATES: usize = 2;

/// People: name, subject pronoun, object pronoun, possessive.
const PEOPLE: [(&str, &str, &str, &str); 12] = [
    ("Ava", "she", "her", "her"),
    ("Liam", "he", "him", "his"),
    ("Maya", "she", "her", "her"),
    ("Noah", "he", "him", "his"),
    ("Zoe", "she", "her", "her"),
    ("Omar", "he", "him", "his"),
    ("Lena", "she", "her", "her"),
    ("Ravi", "he", "him", "his"),
    ("Sofia", "she", "her", "her"),
    ("Kenji", "he", "him", "his"),
    ("Amara", "she", "her", "her"),
    ("Mateo", "he", "him", "his"),
];

const OBJECTS: [&str; 10] = [
    "apples", "marbles", "stickers", "pencils", "cookies", "shells", "cards", "stamps", "beads",
    "books",
];

/// Containers: singular, plural.
const CONTAINERS: [(&str, &str); 6] = [
    ("box", "boxes"),
    ("bag", "bags"),
    ("basket", "baskets"),
    ("jar", "jars"),
    ("crate", "crates"),
    ("tray", "trays"),
];

/// The words one problem is written with.
struct Cast {
    name: &'static str,
    he: &'static str,
    him: &'static str,
    his: &'static str,
    friend: &'static str,
    objects: &'static str,
    container: &'static str,
    containers: &'static str,
}

impl Cast {
    fn draw(rng: &mut SeededRng) -> Cast {
        let person = rng.below(PEOPLE.len());
        // The friend is anyone else: a draw over the others, shifted past the person.
        let friend = (person + 1 + rng.below(PEOPLE.len() - 1)) % PEOPLE.len();
        let (name, he, him, his) = PEOPLE[person];
        let (container, containers) = CONTAINERS[rng.below(CONTAINERS.len())];
        Cast {
            name,
            he,
            him,
            his,
            friend: PEOPLE[friend].0,
            objects: OBJECTS[rng.below(OBJECTS.len())],
            container,
            containers,
        }
    }

    /// The subject pronoun at the start of a sentence.
    fn he_cap(&self) -> String {
        let mut chars = self.he.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_uppercase().chain(chars).collect()
        })
    }
}

/// Uniform in `lo..=hi`.
fn between(rng: &mut SeededRng, lo: i64, hi: i64) -> i64 {
    lo + rng.below((hi - lo + 1) as usize) as i64
}

/// Writes one problem of `kind`.
pub(super) fn write(kind: ProblemKind, rng: &mut SeededRng) -> Problem {
    let template = rng.below(TEMPLATES);
    let c = Cast::draw(rng);
    let (n, obj) = (c.name, c.objects);
    let (question, steps, answer) = match kind {
        ProblemKind::Addition => {
            let (a, b) = (between(rng, 2, 500), between(rng, 2, 500));
            let s = a + b;
            let (q, w) = if template == 0 {
                (
                    format!(
                        "{n} has {a} {obj}. {} gives {} {b} more {obj}. How many {obj} does {n} have now?",
                        c.friend, c.him
                    ),
                    format!(
                        "{n} starts with {a} {obj} and gets {b} more.\nSo {n} has {a} + {b} = {s} {obj}."
                    ),
                )
            } else {
                (
                    format!(
                        "On Monday {n} collected {a} {obj}. On Tuesday {} collected {b} more. How many {obj} did {n} collect in all?",
                        c.he
                    ),
                    format!(
                        "{n} collected {a} {obj} on Monday and {b} on Tuesday.\nIn all that is {a} + {b} = {s} {obj}."
                    ),
                )
            };
            (q, w, s)
        }
        ProblemKind::Subtraction => {
            let a = between(rng, 10, 900);
            let b = between(rng, 1, a - 1);
            let d = a - b;
            let (q, w) = if template == 0 {
                (
                    format!(
                        "{n} had {a} {obj}. {} gave {b} of them to {}. How many {obj} does {n} have left?",
                        c.he_cap(),
                        c.friend
                    ),
                    format!(
                        "{n} gave away {b} of {} {a} {obj}.\nSo {n} has {a} - {b} = {d} {obj} left.",
                        c.his
                    ),
                )
            } else {
                let cont = c.container;
                (
                    format!(
                        "There were {a} {obj} in a {cont}. {n} took {b} of them out. How many {obj} are still in the {cont}?"
                    ),
                    format!(
                        "{n} took {b} of the {a} {obj} out.\nThere are {a} - {b} = {d} {obj} left in the {cont}."
                    ),
                )
            };
            (q, w, d)
        }
        ProblemKind::Multiplication => {
            let (a, b) = (between(rng, 2, 30), between(rng, 2, 30));
            let p = a * b;
            let (q, w) = if template == 0 {
                let (cont, conts) = (c.container, c.containers);
                (
                    format!(
                        "{n} has {a} {conts}. Each {cont} holds {b} {obj}. How many {obj} does {n} have altogether?"
                    ),
                    format!(
                        "{n} has {a} {conts} with {b} {obj} in each.\nThat is {a} * {b} = {p} {obj}."
                    ),
                )
            } else {
                (
                    format!(
                        "{n} buys {a} packs of {obj} for a party. Every pack contains {b} {obj}. How many {obj} does {n} buy?"
                    ),
                    format!("{n} buys {a} packs of {b} {obj}.\nThat is {a} * {b} = {p} {obj}."),
                )
            };
            (q, w, p)
        }
        ProblemKind::Division => {
            let (share, parts) = (between(rng, 2, 25), between(rng, 2, 12));
            let total = share * parts;
            let (q, w) = if template == 0 {
                (
                    format!(
                        "{n} has {total} {obj} and shares them equally among {parts} friends. How many {obj} does each friend get?"
                    ),
                    format!(
                        "{n} splits {total} {obj} into {parts} equal shares.\nEach friend gets {total} / {parts} = {share} {obj}."
                    ),
                )
            } else {
                let (cont, conts) = (c.container, c.containers);
                (
                    format!(
                        "{n} packs {total} {obj} into {conts}, putting {parts} {obj} in each {cont}. How many {conts} does {n} fill?"
                    ),
                    format!(
                        "Each {cont} takes {parts} of the {total} {obj}.\n{n} fills {total} / {parts} = {share} {conts}."
                    ),
                )
            };
            (q, w, share)
        }
        ProblemKind::TwoStep => {
            let (a, b) = (between(rng, 2, 20), between(rng, 2, 20));
            let p = a * b;
            let lost = between(rng, 1, p - 1);
            let left = p - lost;
            let (q, w) = if template == 0 {
                let (cont, conts) = (c.container, c.containers);
                (
                    format!(
                        "{n} buys {a} {conts} of {obj} with {b} {obj} in each {cont}. {} gives {lost} {obj} to {}. How many {obj} does {n} have left?",
                        c.he_cap(),
                        c.friend
                    ),
                    format!(
                        "{n} buys {a} * {b} = {p} {obj}.\nAfter giving {lost} to {}, {n} has {p} - {lost} = {left} {obj}.",
                        c.friend
                    ),
                )
            } else {
                (
                    format!(
                        "{n} collects {a} {obj} every day for {b} days, then loses {lost} of them. How many {obj} does {n} have now?"
                    ),
                    format!(
                        "In {b} days {n} collects {a} * {b} = {p} {obj}.\nAfter losing {lost}, {n} has {p} - {lost} = {left} {obj}."
                    ),
                )
            };
            (q, w, left)
        }
    };
    Problem {
        kind,
        template,
        question,
        solution: format!("{steps}\n#### {answer}"),
        answer,
    }
}
