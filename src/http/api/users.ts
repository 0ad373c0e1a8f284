import type { ApiRoute } from './route.ts';
import type { ApiDeps } from './index.ts';

// Placeholder while the users management routes are written (issue 3).
export function userRoutes(_deps: ApiDeps): ApiRoute[] {
  return [];
}
