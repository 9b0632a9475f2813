//! Property tests: random command sequences (kinds, actors, times) never panic, refused
//! commands record nothing, and rebuilding a request from its events equals the state built
//! incrementally.

mod harness;

use chrono::Duration;
use engine_core::Request;
use harness::*;
use proptest::prelude::*;
use schemas::{Actor, CommandKind};

fn actors() -> Vec<Actor> {
    vec![
        intake(),
        station(),
        supervisor(),
        dept(LEAD),
        dept(ASSISTING),
        dept(OTHER),
        higher(),
        system(),
        auditor(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_never_panic_and_replay_to_the_same_state(
        steps in prop::collection::vec((0..CommandKind::ALL.len(), 0..10usize, 0..4u8, 0..6u32), 1..60)
    ) {
        let mut h = Harness::new();
        h.run(&intake(), receive_cmd(false));
        let pool = actors();
        for (kind, who, mode, minutes_pow) in steps {
            let kind = CommandKind::ALL[kind];
            let (sample_actor, command, now) = sample(kind, &h);
            // Mostly the suitable actor, sometimes anyone; times jump by up to ~17 days.
            let actor = if mode == 0 { pool[who % pool.len()].clone() } else { sample_actor };
            h.now = now.max(h.now) + Duration::minutes(4i64.pow(minutes_pow));
            let before = (h.request.clone(), h.events.len());
            match h.try_run(&actor, command) {
                Ok(events) => prop_assert!(!events.is_empty()),
                Err(_) => prop_assert_eq!((h.request.clone(), h.events.len()), before),
            }
            prop_assert_eq!(h.request.version(), h.events.len() as u64);
        }
        let rebuilt = Request::from_history(h.request.id(), &h.events);
        prop_assert_eq!(rebuilt, h.request.clone());
        // Supervision never panics either.
        let _ = engine_core::supervision::due(&h.request, h.now, &h.policy);
        let _ = engine_core::supervision::next_wakeup(&h.request, &h.policy);
    }
}
