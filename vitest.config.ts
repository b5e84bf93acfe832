import { defineConfig } from "vitest/config";

// Two projects: `unit` (pure, fast, no daemons) and `e2e` (real dockerd/buildkitd/buildx/compose
// from `make testbed`; run one file at a time because they share one daemon and 2 cores).
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" } },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 300_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
