package io.ringserve.systemtests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The figures of a scenario run, printed and appended to {@code system-test-logs/reliability-figures.txt}
 * (the source of the numbers in docs/RELIABILITY.md).
 */
final class Figures {
    private Figures() {
    }

    static void record(String scenario, Map<String, ?> figures) {
        String line = "RELIABILITY " + scenario + (Cluster.FULL ? " (full)" : "") + ": " + figures;
        System.out.println(line);
        Path file = Path.of(System.getProperty("ringserve.logs.dir", "target/system-test-logs"), "reliability-figures.txt");
        try {
            Files.createDirectories(file.getParent());
            Files.writeString(file, line + System.lineSeparator(), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            // the figures are also on stdout
        }
    }

    /** "p50=… p99=… max=…" in milliseconds, one decimal. */
    static String percentiles(List<Duration> values) {
        if (values.isEmpty()) {
            return "n/a";
        }
        List<Long> ns = new ArrayList<>(values.stream().map(Duration::toNanos).toList());
        Collections.sort(ns);
        return "p50=" + ms(at(ns, 0.50)) + "ms p99=" + ms(at(ns, 0.99)) + "ms max=" + ms(ns.getLast()) + "ms (n=" + ns.size() + ")";
    }

    static long at(List<Long> sorted, double q) {
        return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(q * sorted.size()) - 1));
    }

    static String ms(long nanos) {
        return String.format(java.util.Locale.ROOT, "%.1f", nanos / 1e6);
    }

    static String ms(Duration d) {
        return ms(d.toNanos());
    }
}
