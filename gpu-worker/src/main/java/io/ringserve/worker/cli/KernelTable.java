package io.ringserve.worker.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The per-kernel table of one decode step from an Nsight Compute CSV ({@code ncu --csv --metrics
 * gpu__time_duration.sum,dram__bytes_read.sum}, one row per kernel and metric, graph nodes profiled one by one): the
 * step is the kernels after the second-to-last launch of the step's last kernel ({@code sample_tokens}) up to the
 * last, grouped by kernel and grid (one projection kernel serves several ops, told apart by their grids), in launch
 * order. Each kernel runs alone under ncu, so a row holds its launch and drain too; the sum is an upper bound of a
 * graph replay's step.
 */
public final class KernelTable {
    static final String TIME = "gpu__time_duration.sum";
    static final String BYTES = "dram__bytes_read.sum";
    /** The last kernel of a decode step: the sampled ids. */
    static final String STEP_END = "sample_tokens";

    /** One profiled launch. */
    record Launch(String kernel, String grid, double nanos, double bytesRead) {
    }

    /** The launches of one kernel and grid in the step. */
    record Row(String kernel, String grid, int launches, double nanos, double bytesRead) {
        Row plus(Row o) {
            return new Row(kernel, grid, launches + o.launches, nanos + o.nanos, bytesRead + o.bytesRead);
        }
    }

    private KernelTable() {
    }

    /** The launches of an ncu CSV file in profiling order; fails naming the file and what is missing. */
    static List<Launch> read(Path csv) {
        List<String> lines;
        try {
            lines = Files.readAllLines(csv, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(csv + ": " + e.getMessage(), e);
        }
        int header = -1;
        for (int i = 0; i < lines.size() && header < 0; i++) {
            if (lines.get(i).startsWith("\"ID\",")) {
                header = i;
            }
        }
        if (header < 0) {
            throw new IllegalArgumentException(csv + ": no ncu CSV header (a line starting with \"ID\"); run ncu with --csv");
        }
        List<String> names = fields(lines.get(header));
        int id = column(csv, names, "ID");
        int kernel = column(csv, names, "Kernel Name");
        int grid = column(csv, names, "Grid Size");
        int metric = column(csv, names, "Metric Name");
        int value = column(csv, names, "Metric Value");
        Map<String, Map<String, String>> byId = new LinkedHashMap<>(); // ID -> metric -> value, plus kernel and grid
        for (int i = header + 1; i < lines.size(); i++) {
            List<String> f = fields(lines.get(i));
            if (f.size() != names.size()) {
                continue; // ncu's own messages between the rows
            }
            Map<String, String> m = byId.computeIfAbsent(f.get(id), k -> new LinkedHashMap<>());
            m.put(" kernel", f.get(kernel));
            m.put(" grid", f.get(grid));
            m.put(f.get(metric), f.get(value));
        }
        List<Launch> launches = new ArrayList<>();
        for (Map.Entry<String, Map<String, String>> e : byId.entrySet()) {
            Map<String, String> m = e.getValue();
            if (!m.containsKey(TIME)) {
                throw new IllegalArgumentException(csv + ": launch " + e.getKey() + " has no " + TIME + " (run ncu with --metrics " + TIME + ","
                        + BYTES + ")");
            }
            launches.add(new Launch(m.get(" kernel"), m.get(" grid"), number(csv, m.get(TIME)), m.containsKey(BYTES) ? number(csv, m.get(BYTES)) : 0));
        }
        return launches;
    }

    /** The last complete step: after the second-to-last launch of {@code stepEnd} up to and including the last. */
    static List<Row> lastStep(List<Launch> launches, String stepEnd) {
        int last = -1;
        int before = -1;
        for (int i = 0; i < launches.size(); i++) {
            if (kernelName(launches.get(i).kernel()).equals(stepEnd)) {
                before = last;
                last = i;
            }
        }
        if (before < 0) {
            throw new IllegalArgumentException("the profile holds " + (last < 0 ? "no" : "one") + " launch of " + stepEnd
                    + ": a decode step is the launches between two of them (profile at least two decode steps)");
        }
        Map<String, Row> rows = new LinkedHashMap<>();
        for (Launch l : launches.subList(before + 1, last + 1)) {
            String name = kernelName(l.kernel());
            rows.merge(name + " " + l.grid(), new Row(name, l.grid(), 1, l.nanos(), l.bytesRead()), Row::plus);
        }
        return List.copyOf(rows.values());
    }

    /** The table as text; {@code copyBytesPerSecond} > 0 adds each row's share of that bandwidth. */
    static String format(List<Row> rows, double copyBytesPerSecond) {
        StringBuilder sb = new StringBuilder();
        boolean share = copyBytesPerSecond > 0;
        sb.append(String.format(Locale.ROOT, "%-32s %-14s %8s %11s %10s %13s %9s%s%n", "kernel", "grid", "launches", "us/step", "us/launch",
                "DRAM read/step", "GB/s", share ? "  % copy bw" : ""));
        int launches = 0;
        double nanos = 0;
        double bytes = 0;
        for (Row r : rows) {
            sb.append(line(r.kernel(), r.grid(), r.launches(), r.nanos(), r.bytesRead(), copyBytesPerSecond));
            launches += r.launches();
            nanos += r.nanos();
            bytes += r.bytesRead();
        }
        sb.append(line("step", "", launches, nanos, bytes, copyBytesPerSecond));
        return sb.toString();
    }

    private static String line(String kernel, String grid, int launches, double nanos, double bytes, double copy) {
        double bytesPerSecond = nanos > 0 ? bytes / (nanos * 1e-9) : 0;
        String share = copy > 0 ? String.format(Locale.ROOT, "  %8.1f %%", 100 * bytesPerSecond / copy) : "";
        return String.format(Locale.ROOT, "%-32s %-14s %8d %11.1f %10.2f %13s %9.0f%s%n", kernel, grid.replace(" ", ""), launches, nanos / 1e3,
                nanos / 1e3 / launches, String.format(Locale.ROOT, "%,.0f", bytes), bytesPerSecond / 1e9, share);
    }

    /** The kernel's name without a parameter list (ncu prints C++ names with one). */
    private static String kernelName(String name) {
        int paren = name.indexOf('(');
        return (paren < 0 ? name : name.substring(0, paren)).trim();
    }

    private static int column(Path csv, List<String> names, String name) {
        int i = names.indexOf(name);
        if (i < 0) {
            throw new IllegalArgumentException(csv + ": the ncu CSV has no column \"" + name + "\"");
        }
        return i;
    }

    private static double number(Path csv, String text) {
        try {
            return Double.parseDouble(text.replace(",", ""));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(csv + ": \"" + text + "\" is not a number", e);
        }
    }

    /** The fields of one CSV line: comma-separated, each optionally in double quotes ("" inside quotes is one "). */
    static List<String> fields(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder f = new StringBuilder();
        boolean quoted = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (quoted) {
                if (c == '"' && i + 1 < line.length() && line.charAt(i + 1) == '"') {
                    f.append('"');
                    i++;
                } else if (c == '"') {
                    quoted = false;
                } else {
                    f.append(c);
                }
            } else if (c == '"') {
                quoted = true;
            } else if (c == ',') {
                out.add(f.toString());
                f.setLength(0);
            } else {
                f.append(c);
            }
        }
        out.add(f.toString());
        return out;
    }
}
