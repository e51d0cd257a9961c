import { STATUS_CODES } from 'node:http';

/** The Content-Type of a failure: RFC 9457 problem details, as ASP.NET Core (KeyShift's host) answers them. */
export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

/** A failure's body: RFC 9457's members, plus the kvmesh error code as an extension member. */
export interface KeyShiftProblem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
}

/**
 * The `type` URI of each status KeyShift answers: the RFC 9110 section that
 * defines it, as ASP.NET Core's default problem details name them. Other
 * statuses are `about:blank` (RFC 9457 §4.2.1).
 */
const TYPE_SECTIONS: Readonly<Record<number, string>> = {
  400: '15.5.1',
  404: '15.5.5',
  405: '15.5.6',
  412: '15.5.13',
  413: '15.5.14',
  414: '15.5.15',
  500: '15.6.1',
  503: '15.6.4',
  504: '15.6.5',
};

/** The problem details of a failure with this status, code and message. */
export function problemOf(status: number, code: string, detail: string): KeyShiftProblem {
  const section = TYPE_SECTIONS[status];
  return {
    type: section === undefined ? 'about:blank' : `https://tools.ietf.org/html/rfc9110#section-${section}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
  };
}
