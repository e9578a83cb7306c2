import { LabIcon } from '@jupyterlab/ui-components';

import leptonSvgstr from '../style/lepton.svg';

/** The Lepton Lab icon (an atom-ish orbit), themed through `jp-icon3`. */
export const leptonIcon = new LabIcon({
  name: 'lepton-lab:lepton',
  svgstr: leptonSvgstr
});
