package io.ringserve.worker.cli;

import io.ringserve.worker.demo.SyntheticCheckpoint;
import java.nio.file.Files;
import java.nio.file.Path;

/** Where the demo model lives when no model is given: {@code $RING_SERVE_DEMO_MODEL}, else the user cache. */
public final class DemoModel {
    private DemoModel() {
    }

    public static Path location() {
        String explicit = System.getenv("RING_SERVE_DEMO_MODEL");
        if (explicit != null && !explicit.isBlank()) {
            return Path.of(explicit);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path cache = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return cache.resolve("ring-serve").resolve("demo-model-v1");
    }

    /** The demo model's directory, written there first (seed 42) if it does not hold one yet. */
    public static Path ensure() {
        Path demo = location();
        if (!Files.exists(demo.resolve("config.json"))) {
            SyntheticCheckpoint.write(demo, SyntheticCheckpoint.demoConfig(), 42L, 0);
        }
        return demo;
    }
}
