// Demo figures for the dashboard. Static on purpose: only the flags change what the page shows.

export const MONTHS = ['Dec', 'Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov'];

/** Monthly revenue in thousands of dollars, this year and last year. */
export const REVENUE = [182, 171, 190, 204, 199, 221, 236, 229, 248, 262, 271, 289];
export const REVENUE_LAST_YEAR = [150, 149, 158, 163, 170, 172, 181, 186, 184, 197, 205, 214];

/** The metrics the KPI widget can show; `widget-config` picks which, by key. */
export const METRICS = {
  revenue: { label: 'Revenue (Nov)', value: '$289k', delta: '+6.6%', good: true, trend: REVENUE },
  'active-users': {
    label: 'Active users',
    value: '18,402',
    delta: '+3.1%',
    good: true,
    trend: [14.1, 14.3, 14.9, 15.2, 15.0, 15.8, 16.4, 16.9, 17.1, 17.6, 17.8, 18.4],
  },
  churn: {
    label: 'Churn',
    value: '1.9%',
    delta: '+0.2 pt',
    good: false,
    trend: [2.4, 2.3, 2.2, 2.1, 2.0, 1.8, 1.7, 1.7, 1.6, 1.7, 1.7, 1.9],
  },
  nps: { label: 'NPS', value: '47', delta: '+5', good: true, trend: [31, 33, 34, 36, 35, 38, 40, 41, 40, 43, 42, 47] },
};

export const ACCOUNTS = [
  { name: 'Globex', mrr: 48200, change: 12 },
  { name: 'Initech', mrr: 39150, change: 4 },
  { name: 'Umbrella Health', mrr: 31800, change: -3 },
  { name: 'Stark Logistics', mrr: 27640, change: 9 },
  { name: 'Wayne Retail', mrr: 22410, change: 1 },
];
