import type { ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';

// Placeholder while the events management routes are written (issue 3).
export function eventRoutes(_deps: ApiDeps): ApiRoute[] {
  return [];
}
