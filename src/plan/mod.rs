//! Planning: dependencies between tasks, file overlaps, waves, complexity.
