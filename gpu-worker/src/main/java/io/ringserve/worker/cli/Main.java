package io.ringserve.worker.cli;

public final class Main {
    public static void main(String[] args) {
        System.out.println("ring-serve worker " + Runtime.version());
    }
}
