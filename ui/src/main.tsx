import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./styles.css";

async function boot() {
  // `?mock` (browser tests, design work) swaps the shell for fixtures; the chunk is only
  // loaded then.
  if (new URLSearchParams(window.location.search).has("mock")) {
    const { installMocks } = await import("./mock/install");
    installMocks(new URLSearchParams(window.location.search).get("mock") ?? "");
  }
  const qc = new QueryClient({
    defaultOptions: {
      queries: { retry: false, refetchOnWindowFocus: true, staleTime: 5_000 },
      mutations: { retry: false },
    },
  });
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <QueryClientProvider client={qc}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}

void boot();
