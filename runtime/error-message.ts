// errorMessage lives in the bottom layer (the archive library uses it too); every layer imports it here.
export { errorMessage } from '../archive/error-message.ts';
