/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The Tauri shell loads ui/dist (frontendDist) and, in development, the dev server on
// 127.0.0.1:5173 (devUrl). Only loopback addresses are used.
export default defineConfig({
  plugins: [react()],
  clearScreen: false,
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1", port: 4173 },
  build: { outDir: "dist", target: "es2022", sourcemap: false },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
    // The CI machine has 2 cores shared with Rust builds: generous limits, conditions not sleeps.
    testTimeout: 30_000,
  },
});
